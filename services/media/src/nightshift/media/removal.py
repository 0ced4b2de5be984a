"""Removing media: a deleted post's, and uploads never attached to a post."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.storage import Storage
from nightshift.media.models import Media


def delete_post_media(sessions: sessionmaker[Session], storage: Storage, post_id: int) -> int:
    """Remove post *post_id*'s originals, variants and media rows; return how many media.

    Objects are deleted before the rows, inside the rows' transaction: if
    storage fails, the rows stay and a retry finds them again. Running it twice
    removes nothing the second time.
    """
    with transaction(sessions) as session:
        rows = session.scalars(select(Media).where(Media.post_id == post_id).with_for_update()).all()
        return _remove(session, storage, rows)


def cleanup_orphan_media(
    sessions: sessionmaker[Session],
    storage: Storage,
    *,
    grace: dt.timedelta,
    batch_size: int,
    now: dt.datetime | None = None,
) -> int:
    """Remove uploads older than *grace* that were never attached to a post; return how many.

    Works in batches of *batch_size*, each its own short transaction that skips
    rows another worker holds, so it never blocks uploads being attached.
    """
    cutoff = (now or dt.datetime.now(dt.UTC)) - grace
    removed = 0
    while True:
        with transaction(sessions) as session:
            rows = session.scalars(
                select(Media)
                .where(Media.post_id.is_(None), Media.created_at < cutoff)
                .order_by(Media.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            removed += _remove(session, storage, rows)
        if len(rows) < batch_size:
            return removed


def _remove(session: Session, storage: Storage, media: Sequence[Media]) -> int:
    if not media:
        return 0
    storage.delete_many(key for item in media for key in item.stored_keys())
    session.execute(delete(Media).where(Media.id.in_([item.id for item in media])))
    return len(media)
