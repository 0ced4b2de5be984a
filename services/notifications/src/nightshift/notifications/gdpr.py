"""The notifications service's part of a GDPR request, and the export-ready email's link.

Export: the user's rows of every table in :data:`USER_TABLES` (preferences, the
suppression of their address, devices and what was pushed to them, webhook
endpoints and their deliveries, the bulk and single email logs), never a device
token, a Web Push key or a webhook secret.

Erasure, per table (``docs/gdpr.md``): every row is deleted, except the
suppression of the user's address, which is kept under the address's digest
(``sha256:…``, :func:`~nightshift.common.db.models.suppression_digest_sql`) so that
the address stays suppressed without being stored; and the emails the ``outbox``
backend wrote to its folder for the user (single and bulk) are deleted (the local
mail catcher's copy; what an SMTP server or SendGrid delivered is beyond reach).

A table of this service that holds a user's rows joins the export and the erasure
by being listed in :data:`USER_TABLES` with the condition selecting the user's rows
and the columns worth exporting; nothing else changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import EmailRequest
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import GdprRequest, suppression_digest_sql
from nightshift.common.errors import NotFound, PermanentError
from nightshift.common.gdpr.parts import ExportPart, write_export_part
from nightshift.common.gdpr.workflow import finish_part, pending_subject
from nightshift.common.storage import Storage

SERVICE = "notifications"

#: The email sent when an export archive is ready; ``context_ids["gdpr_request"]`` names the request.
EXPORT_READY_TEMPLATE = "gdpr_export_ready"

DESCRIPTION = (
    "Your notification choices and what we sent you: your preferences by category and channel, "
    "whether your address is suppressed (it bounced or was reported), the devices you registered for "
    "push (not their tokens) and the pushes sent to them, your webhook endpoints (not their secrets) "
    "and their deliveries, and the emails we sent you, one by one and in campaigns: which one, when, "
    "in which language and through which service (not the emails' content)."
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
      erase: The statement erasing the user's rows (``:user`` bound), when they are not
        simply deleted; its row count is the part's count for the table.
    """

    name: str
    where: str
    columns: tuple[str, ...]
    order_by: str = "id"
    erase: str | None = None

    def erase_statement(self) -> str:
        """What erases the user's rows: :attr:`erase`, or deleting them."""
        return self.erase or f"DELETE FROM {self.name} WHERE {self.where}"  # noqa: S608 - constants


#: The user's address, as suppressions store it; the users row exists while the parts run.
_ADDRESS = "(SELECT lower(email) FROM users WHERE id = :user)"

#: Keeps the suppression of the user's address under the address's digest instead of the address.
_HASH_SUPPRESSION = f"""
    WITH erased AS (
        DELETE FROM email_suppressions WHERE email = {_ADDRESS} RETURNING email, reason, source, created_at
    )
    INSERT INTO email_suppressions (email, reason, source, created_at)
    SELECT {suppression_digest_sql("email")}, reason, source, created_at FROM erased
    ON CONFLICT (email) DO NOTHING
"""  # noqa: S608 - constants

#: Every table of the service that holds a user's rows: exported, then erased in this order
#: (rows reached through another table before that table).
USER_TABLES: tuple[UserTable, ...] = (
    UserTable(
        "notification_preferences",
        "user_id = :user",
        ("category", "channel", "enabled", "source", "updated_at"),
        order_by="category, channel",
    ),
    UserTable(
        "email_suppressions",
        f"email = {_ADDRESS}",
        ("reason", "source", "created_at"),
        order_by="created_at",
        erase=_HASH_SUPPRESSION,
    ),
    UserTable(
        "push_deliveries",
        "device_id IN (SELECT id FROM push_devices WHERE user_id = :user)",
        ("device_id", "status", "sent_at"),
        order_by="sent_at, device_id",
    ),
    UserTable("push_devices", "user_id = :user", ("id", "platform", "created_at", "last_seen_at")),
    UserTable(
        "webhook_deliveries",
        "endpoint_id IN (SELECT id FROM webhook_endpoints WHERE owner_user_id = :user)",
        ("endpoint_id", "event_id", "event", "status", "attempts", "last_status_code", "updated_at"),
        order_by="updated_at, endpoint_id, event_id",
    ),
    UserTable("webhook_endpoints", "owner_user_id = :user", ("id", "url", "events", "enabled", "created_at")),
    UserTable(
        "bulk_email_deliveries",
        "user_id = :user",
        ("campaign", "status", "template", "locale", "backend", "created_at"),
        order_by="campaign",
    ),
    UserTable("email_deliveries", "user_id = :user", ("id", "template", "locale", "backend", "sent_at")),
)

#: The files the ``outbox`` backend wrote for the user: single and bulk emails.
_OUTBOX_FILES = text(
    """
    SELECT provider_message_id FROM email_deliveries
    WHERE user_id = :user AND backend = 'outbox' AND provider_message_id IS NOT NULL
    UNION
    SELECT provider_message_id FROM bulk_email_deliveries
    WHERE user_id = :user AND backend = 'outbox' AND provider_message_id IS NOT NULL
    """
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
    """Erase the user's rows of :data:`USER_TABLES` and delete their outbox emails; acknowledge the part.

    Parameters:
      outbox_dir: The ``outbox`` backend's folder, or None when another backend is configured.

    Returns:
      The counts erased, or None when the part was done already.
    """
    with transaction(sessions) as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="erasure")
        if user_id is None:
            return None
        files = session.scalars(_OUTBOX_FILES, {"user": user_id}).all()
        counts = {"outbox_emails": _delete_outbox_files(outbox_dir, [str(name) for name in files])}
        for table in USER_TABLES:
            result = session.execute(text(table.erase_statement()), {"user": user_id})
            counts[table.name] = int(result.rowcount)  # type: ignore[attr-defined]
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
