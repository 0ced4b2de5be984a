"""Deleting expired or revoked tokens and stale sessions, in bounded batches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction

_DELETE_TOKENS = text(
    """
    DELETE FROM auth_tokens WHERE id IN (
        SELECT id FROM auth_tokens
        WHERE expires_at < :now OR revoked_at IS NOT NULL
        LIMIT :batch FOR UPDATE SKIP LOCKED
    )
    """
)

_DELETE_SESSIONS = text(
    """
    DELETE FROM user_sessions WHERE id IN (
        SELECT id FROM user_sessions
        WHERE last_seen_at < :cutoff
        LIMIT :batch FOR UPDATE SKIP LOCKED
    )
    """
)


@dataclass(frozen=True)
class CleanupResult:
    tokens_deleted: int
    sessions_deleted: int
    batches: int


def cleanup_expired_tokens(
    sessions: sessionmaker[Session], *, batch_size: int, session_retention: dt.timedelta, now: dt.datetime | None = None
) -> CleanupResult:
    """Delete expired/revoked tokens and sessions idle past *session_retention*.

    Each batch of at most *batch_size* rows is its own short transaction, so no
    lock is held for long and concurrent logins are never blocked by the
    cleanup. Running it twice deletes nothing the second time.
    """
    now = now or dt.datetime.now(dt.UTC)
    tokens = _delete_in_batches(sessions, _DELETE_TOKENS, {"now": now, "batch": batch_size})
    stale = _delete_in_batches(sessions, _DELETE_SESSIONS, {"cutoff": now - session_retention, "batch": batch_size})
    return CleanupResult(tokens[0], stale[0], tokens[1] + stale[1])


def _delete_in_batches(
    sessions: sessionmaker[Session], statement: TextClause, params: dict[str, object]
) -> tuple[int, int]:
    deleted = batches = 0
    batch = int(params["batch"])  # type: ignore[call-overload]
    while True:
        with transaction(sessions) as session:
            count: int = session.execute(statement, params).rowcount  # type: ignore[attr-defined]
        deleted += count
        batches += 1
        if count < batch:
            return deleted, batches
