"""Idempotency keys recorded in the same transaction as the effect they guard."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from nightshift.common.db.models import ProcessedKey


def claim(session: Session, key: str) -> bool:
    """Record *key* in the caller's transaction; return False if it was already recorded.

    Use it before an effect in the same transaction: when the transaction
    commits, the key and the effect exist together; when it rolls back,
    neither does, so a redelivered message either finds the key (and does
    nothing) or performs the effect once. A concurrent claim of the same key
    waits for the first transaction and then returns False.
    """
    statement = insert(ProcessedKey).values(key=key).on_conflict_do_nothing().returning(ProcessedKey.key)
    return session.execute(statement).first() is not None
