"""The notifications service's part of a GDPR request, and the export-ready email's link.

Export: the rows of every table in :data:`USER_TABLES` that belong to the user
(today the delivery log: which email was sent when, in which language, through
which backend). Erasure policy: those rows are deleted, and so are the emails
the ``outbox`` backend wrote to its folder for the user (the local mail
catcher's copy; what an SMTP server or SendGrid delivered is beyond reach).

A table of this service that holds a user's rows (preferences, devices,
webhooks…) joins the export and the erasure by being listed in
:data:`USER_TABLES` with the condition selecting the user's rows and the
columns worth exporting; nothing else changes (``docs/gdpr.md`` lists the lines
the preferences, suppressions, push and webhook tables need).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import EmailRequest
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import GdprRequest
from nightshift.common.errors import NotFound, PermanentError
from nightshift.common.gdpr.parts import ExportPart, write_export_part
from nightshift.common.gdpr.workflow import finish_part, pending_subject
from nightshift.common.storage import Storage
from nightshift.notifications.models import EmailDelivery

SERVICE = "notifications"

#: The email sent when an export archive is ready; ``context_ids["gdpr_request"]`` names the request.
EXPORT_READY_TEMPLATE = "gdpr_export_ready"

DESCRIPTION = (
    "The emails we sent you: which one, when, in which language and through which service "
    "(the delivery log; not the emails' content)."
)


@dataclass(frozen=True)
class UserTable:
    """A table of this service holding rows about one user.

    Parameters:
      name: The table.
      where: SQL selecting the user's rows, the user's id bound as ``:user``
        (``user_id = :user``; a subquery for rows reached through another table).
      columns: What is exported of each row (never secrets: device tokens, webhook secrets).
      order_by: The export's order.
    """

    name: str
    where: str
    columns: tuple[str, ...]
    order_by: str = "id"


#: Every table of the service that holds a user's rows: exported, then deleted on erasure,
#: in this order (list rows reached through another table before that table).
USER_TABLES: tuple[UserTable, ...] = (
    UserTable("email_deliveries", "user_id = :user", ("id", "template", "locale", "backend", "sent_at")),
)


def export_part(sessions: sessionmaker[Session], storage: Storage, request_id: int) -> dict[str, int] | None:
    """Write the user's rows of :data:`USER_TABLES` for export *request_id*; acknowledge the part.

    Returns:
      The part's counts, or None when it was done already.
    """
    with sessions() as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="export")
        if user_id is None:
            return None
        tables = {table.name: _rows(session, table, user_id) for table in USER_TABLES}
    counts = write_export_part(storage, request_id, ExportPart(SERVICE, DESCRIPTION, tables))
    with transaction(sessions) as session:
        finish_part(session, request_id, SERVICE, counts)
    return counts


def erase_part(sessions: sessionmaker[Session], request_id: int, *, outbox_dir: Path | None) -> dict[str, int] | None:
    """Delete the user's rows of :data:`USER_TABLES` and their outbox emails; acknowledge the part.

    Parameters:
      outbox_dir: The ``outbox`` backend's folder, or None when another backend is configured.

    Returns:
      The counts erased, or None when the part was done already.
    """
    with transaction(sessions) as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="erasure")
        if user_id is None:
            return None
        files = session.scalars(
            select(EmailDelivery.provider_message_id).where(
                EmailDelivery.user_id == user_id,
                EmailDelivery.backend == "outbox",
                EmailDelivery.provider_message_id.is_not(None),
            )
        ).all()
        counts = {"outbox_emails": _delete_outbox_files(outbox_dir, [str(name) for name in files])}
        for table in USER_TABLES:
            statement = text(f"DELETE FROM {table.name} WHERE {table.where}")  # noqa: S608 - constants
            counts[table.name] = int(session.execute(statement, {"user": user_id}).rowcount)  # type: ignore[attr-defined]
        finish_part(session, request_id, SERVICE, counts)
    return counts


def export_ready_context(session: Session, request: EmailRequest) -> dict[str, Any]:
    """The link and its expiry for the export-ready email, read from the request the email names.

    Raises:
      NotFound: The email names no export of this user with a live link.
    """
    request_id = request.context_ids.get("gdpr_request")
    export = session.get(GdprRequest, request_id) if request_id is not None else None
    if export is None or export.kind != "export" or export.user_id != request.user_id:
        raise NotFound(f"{EXPORT_READY_TEMPLATE}: no export {request_id} of user {request.user_id}")
    if export.link_url is None or export.link_expires_at is None:
        raise NotFound(f"{EXPORT_READY_TEMPLATE}: export {request_id} has no link")
    if export.link_expires_at <= dt.datetime.now(dt.UTC):
        raise PermanentError(f"{EXPORT_READY_TEMPLATE}: the link of export {request_id} has expired")
    return {"link": export.link_url, "expires_at": export.link_expires_at.strftime("%Y-%m-%d %H:%M")}


def _rows(session: Session, table: UserTable, user_id: int) -> list[dict[str, Any]]:
    query = text(
        f"SELECT {', '.join(table.columns)} FROM {table.name} "  # noqa: S608 - constants
        f"WHERE {table.where} ORDER BY {table.order_by}"
    )
    return [dict(row._mapping) for row in session.execute(query, {"user": user_id})]


def _delete_outbox_files(outbox_dir: Path | None, names: list[str]) -> int:
    if outbox_dir is None:
        return 0
    deleted = 0
    for name in names:
        path = outbox_dir / Path(name).name  # a name, never a path out of the folder
        if path.is_file():
            path.unlink()
            deleted += 1
    return deleted
