"""Deleting old posts nobody engaged with, in bounded batches, each announcing its deletions.

A post is eligible when it is older than the retention and has no like, comment or
share. Each batch is one short transaction: it deletes at most ``batch_size``
eligible posts (skipping rows locked by someone else, so the app is never blocked),
and writes one ``post.deleted`` per post to the outbox in the same transaction — the
events exist exactly when the deletions do. Media then removes the posts' files;
hashtag links, search documents and engagement rows go with the posts by cascade.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.outbox import publish_many_in_transaction

_DELETE_BATCH = text(
    """
    DELETE FROM posts WHERE id IN (
        SELECT p.id FROM posts p
        WHERE p.created_at < :cutoff AND p.id > :after
          AND NOT EXISTS (SELECT 1 FROM post_likes l WHERE l.post_id = p.id)
          AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.post_id = p.id)
          AND NOT EXISTS (SELECT 1 FROM shares s WHERE s.post_id = p.id)
        ORDER BY p.id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


@dataclass(frozen=True)
class CleanupOutcome:
    deleted: int
    batches: int
    cutoff: dt.datetime


def cleanup_old_posts(
    sessions: sessionmaker[Session],
    *,
    retention: dt.timedelta,
    batch_size: int = 1000,
    now: dt.datetime | None = None,
) -> CleanupOutcome:
    """Delete posts older than *retention* with no engagement; publish ``post.deleted`` for each.

    Running it twice deletes nothing the second time.

    Parameters:
      sessions: Sessions on the database.
      retention: Posts younger than this are kept whatever their engagement.
      batch_size: Posts deleted per transaction.
      now: The current time.

    Returns:
      How many posts were deleted, in how many batches, and the cutoff used.
    """
    cutoff = (now or dt.datetime.now(dt.UTC)) - retention
    deleted = batches = 0
    after = 0
    while True:
        with transaction(sessions) as session:
            ids = sorted(
                int(i) for i in session.scalars(_DELETE_BATCH, {"cutoff": cutoff, "after": after, "batch": batch_size})
            )
            publish_many_in_transaction(
                session,
                "post.deleted",
                [{"post_id": post_id} for post_id in ids],
                aggregate_ids=[f"post:{post_id}" for post_id in ids],
            )
        batches += 1
        deleted += len(ids)
        if len(ids) < batch_size:
            return CleanupOutcome(deleted, batches, cutoff)
        after = ids[-1]
