"""The users service's part of a GDPR request, and the workflow's start and finishing steps.

Export part: the account (address, name, language, dates), sessions and
sign-in tokens (dates only, never a token or its hash), counters, and the GDPR
requests the user made.

Erasure policy of this service's tables:

=================================  =====================================================
``auth_tokens``, ``user_sessions``  deleted (by the part)
``user_stats``                      deleted (by the part)
``processed_keys``                  the user's welcome key deleted (by the part)
``users``                           deleted last, by the finishing step, once every
                                    service acknowledged its part (anything written for
                                    the user in between goes with it by cascade)
=================================  =====================================================

The finishing step of an erasure (:func:`finish_erasure`) also scrubs what the
platform holds (``nightshift.common.gdpr.scrub``: queued messages, outbox
events, job records' arguments, earlier requests and their archives), then
records the completion: each service's acknowledgement with counts and time.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq import Message
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import GdprRequest
from nightshift.common.errors import NotFound, PermanentError
from nightshift.common.gdpr import scrub
from nightshift.common.gdpr.parts import ExportPart, write_export_part
from nightshift.common.gdpr.workflow import acknowledgements, finish_part, pending_subject, start_parts
from nightshift.common.storage import Storage

if TYPE_CHECKING:
    from dramatiq.brokers.redis import RedisBroker

SERVICE = "users"

DESCRIPTION = (
    "Your account (address, name, language, dates), your sessions and sign-in tokens (dates only, never the "
    "tokens), your counters, and the data requests you made."
)

_EXPORT = {
    "account": text("SELECT id, email, display_name, locale, created_at, last_active_at FROM users WHERE id = :user"),
    "sessions": text("SELECT id, created_at, last_seen_at FROM user_sessions WHERE user_id = :user ORDER BY id"),
    "tokens": text(
        "SELECT id, kind, created_at, expires_at, revoked_at FROM auth_tokens WHERE user_id = :user ORDER BY id"
    ),
    "statistics": text(
        "SELECT posts_count, likes_received, comments_received, last_activity_at, updated_at "
        "FROM user_stats WHERE user_id = :user"
    ),
    "data_requests": text(
        "SELECT id, kind, requested_by, requested_at, status, completed_at FROM gdpr_requests "
        "WHERE user_id = :user ORDER BY id"
    ),
}

_ERASE = {
    "auth_tokens": text("DELETE FROM auth_tokens WHERE user_id = :user"),
    "user_sessions": text("DELETE FROM user_sessions WHERE user_id = :user"),
    "user_stats": text("DELETE FROM user_stats WHERE user_id = :user"),
    "processed_keys": text("DELETE FROM processed_keys WHERE key = 'welcome_email:' || CAST(:user AS text)"),
}


def start_export(
    sessions: sessionmaker[Session], request_id: int, *, broker: dramatiq.Broker | None = None
) -> list[Message[Any]]:
    """Send every service its part of export *request_id* (see ``workflow.start_parts``)."""
    return start_parts(sessions, request_id, kind="export", broker=broker)


def start_erasure(
    sessions: sessionmaker[Session], request_id: int, *, broker: dramatiq.Broker | None = None
) -> list[Message[Any]]:
    """Send every service its part of erasure *request_id* (see ``workflow.start_parts``)."""
    return start_parts(sessions, request_id, kind="erasure", broker=broker)


def export_part(sessions: sessionmaker[Session], storage: Storage, request_id: int) -> dict[str, int] | None:
    """Write the account, sessions, tokens, counters and requests for export *request_id*; acknowledge.

    Returns:
      The part's counts, or None when it was done already.
    """
    with sessions() as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="export")
        if user_id is None:
            return None
        tables = {
            name: [dict(row._mapping) for row in session.execute(query, {"user": user_id})]
            for name, query in _EXPORT.items()
        }
    counts = write_export_part(storage, request_id, ExportPart(SERVICE, DESCRIPTION, tables))
    with transaction(sessions) as session:
        finish_part(session, request_id, SERVICE, counts)
    return counts


def erase_part(sessions: sessionmaker[Session], request_id: int) -> dict[str, int] | None:
    """Delete the user's tokens, sessions, counters and welcome key; acknowledge the part.

    Returns:
      The counts erased, or None when the part was done already.
    """
    with transaction(sessions) as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="erasure")
        if user_id is None:
            return None
        counts = {
            name: int(session.execute(statement, {"user": user_id}).rowcount)  # type: ignore[attr-defined]
            for name, statement in _ERASE.items()
        }
        finish_part(session, request_id, SERVICE, counts)
    return counts


def finish_erasure(
    sessions: sessionmaker[Session], storage: Storage, broker: RedisBroker, request_id: int
) -> dict[str, Any] | None:
    """Delete the account, scrub the platform, and record the completion of erasure *request_id*.

    One transaction, the request row locked: run twice (a redelivery, a crash
    before the commit), it does its work once.

    Returns:
      The completion record, or None when the request was completed already.

    Raises:
      NotFound: There is no such request.
      PermanentError: The request is not an erasure, or a part is still pending.
    """
    with transaction(sessions) as session:
        request = open_request(session, request_id, "erasure")
        if request is None:
            return None
        user_id = request.user_id
        counts: dict[str, int] = {}
        if user_id is not None:
            counts["outbox_events"] = scrub.delete_outbox_events(session, user_id)
            counts["users"] = int(
                session.execute(text("DELETE FROM users WHERE id = :user"), {"user": user_id}).rowcount  # type: ignore[attr-defined]
            )
            counts["job_records"] = scrub.strip_job_records(session, user_id)
            counts["queued_messages"] = scrub.drop_queued_messages(broker, user_id)
        counts["requests_forgotten"] = scrub.forget_subject_requests(session, storage, request.subject_digest)
        return complete_request(session, request, {"step": "finish_user_erasure", "counts": counts})


def open_request(session: Session, request_id: int, kind: str) -> GdprRequest | None:
    """*request_id* locked, or None when it is done; it must be of *kind* with every part acknowledged.

    Raises:
      NotFound: There is no such request.
      PermanentError: It is not of *kind*, or a part is still pending.
    """
    request = session.get(GdprRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound(f"GDPR request {request_id} does not exist")
    if request.kind != kind:
        raise PermanentError(f"GDPR request {request_id} is an {request.kind}, not an {kind}")
    if request.status == "done":
        return None
    pending = [s for s, part in acknowledgements(session, request_id).items() if part["status"] != "done"]
    if pending:
        raise PermanentError(f"GDPR request {request_id}: parts still pending ({', '.join(pending)})")
    return request


def complete_request(session: Session, request: GdprRequest, finish: dict[str, Any]) -> dict[str, Any]:
    """Mark *request* done with its completion record (no personal data in it); return the record."""
    now = dt.datetime.now(dt.UTC)
    finish = {**finish, "at": now.isoformat()}
    record = {
        "request_id": request.id,
        "kind": request.kind,
        "requested_by": request.requested_by,
        "requested_at": request.requested_at.isoformat(),
        "deadline_at": request.deadline_at.isoformat(),
        "completed_at": now.isoformat(),
        "parts": acknowledgements(session, request.id),
        "finish": finish,
    }
    request.status = "done"
    request.completed_at = now
    request.summary = record
    return record
