"""Deleting old posts nobody engaged with, in bounded batches, each announcing its deletions.

A post is eligible when it is older than the retention and has no like, comment or
share. Each batch is one statement in one short transaction: it finds at most
``batch_size`` eligible posts after the previous batch's last id, locks them
(skipping rows locked by someone else, so the app is never blocked), deletes them
with their hashtag links, and inserts one ``post.deleted`` per post into the
outbox — the events exist exactly when the deletions do, and the relay is
notified once per batch. Media then removes the posts' files; search documents
and engagement rows go with the posts by cascade.

Finding the posts is most of the work (about thirteen old posts are looked at for
each one deleted), so the search reads only indexes: it takes no row lock (a
locking query cannot use index-only scans for the tables it joins), and the
existence tests are bounded below by the cursor so that none scans an index from
its start. The links (one or more rows per post) are deleted in the statement rather
than by the foreign key's cascade, which runs one query per post; for the other
tables, one row or none per post, the cascade measured as fast.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from opentelemetry import propagate
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.events import validate_event
from nightshift.common.outbox import OUTBOX_CHANNEL

#: The event published for each deleted post; its payload is built in SQL as ``{"post_id": id}``.
EVENT = "post.deleted"

_DELETE_BATCH = text(
    """
    WITH eligible AS MATERIALIZED (
        SELECT p.id FROM posts p
        WHERE p.created_at < :cutoff AND p.id > :after
          AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.post_id = p.id AND c.post_id > :after)
          AND NOT EXISTS (SELECT 1 FROM post_likes l WHERE l.post_id = p.id AND l.post_id > :after)
          AND NOT EXISTS (SELECT 1 FROM shares s WHERE s.post_id = p.id AND s.post_id > :after)
        ORDER BY p.id
        LIMIT :batch
    ),
    locked AS MATERIALIZED (
        SELECT p.id FROM posts p
        WHERE p.id IN (SELECT id FROM eligible)
        FOR UPDATE SKIP LOCKED
    ),
    links AS (DELETE FROM post_hashtags h USING locked WHERE h.post_id = locked.id),
    deleted AS (DELETE FROM posts p USING locked WHERE p.id = locked.id RETURNING p.id),
    events AS (
        INSERT INTO outbox_events (event_name, payload, aggregate_id, trace_context)
        SELECT :event, jsonb_build_object('post_id', id), 'post:' || id, CAST(:trace_context AS jsonb)
        FROM deleted
        ORDER BY id
    )
    SELECT count(*) AS deleted, (SELECT count(*) FROM eligible) AS found, (SELECT max(id) FROM eligible) AS last,
           CASE WHEN count(*) > 0 THEN pg_notify(:channel, '') END AS notified
    FROM deleted
    """
)


@dataclass(frozen=True)
class CleanupOutcome:
    deleted: int
    batches: int
    cutoff: dt.datetime


def _check_event() -> None:
    """Make sure the payload the SQL builds is what the catalogue's ``post.deleted`` expects.

    Raises:
      UnknownEvent, InvalidEvent: The event is not catalogued, or needs more than a post id.
      RuntimeError: The catalogue's payload has other fields than ``post_id``.
    """
    _, event = validate_event(EVENT, {"post_id": 1})
    if event.model_dump(mode="json") != {"post_id": 1}:
        raise RuntimeError(f"{EVENT} carries more than a post id; cleanup.py builds its payload in SQL")


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
      batch_size: Most posts deleted per transaction.
      now: The current time.

    Returns:
      How many posts were deleted, in how many batches, and the cutoff used.

    Raises:
      UnknownEvent, InvalidEvent, RuntimeError: ``post.deleted`` no longer has the payload built here.
    """
    _check_event()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    cutoff = (now or dt.datetime.now(dt.UTC)) - retention
    params = {
        "cutoff": cutoff,
        "batch": batch_size,
        "event": EVENT,
        "trace_context": json.dumps(carrier),
        "channel": OUTBOX_CHANNEL,
    }
    deleted = batches = 0
    after = 0
    while True:
        with transaction(sessions) as session:
            row = session.execute(_DELETE_BATCH, {**params, "after": after}).one()
        batches += 1
        deleted += int(row.deleted)
        if row.found < batch_size:  # the last eligible posts were in this batch
            return CleanupOutcome(deleted, batches, cutoff)
        after = int(row.last)
