"""delete_post_media and cleanup_orphan_media remove objects and rows, idempotently."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dramatiq import Message
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.events import publish
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.media import removal
from nightshift.media.models import Media
from tests.integration.media.conftest import Uploads, wait_for_jobs
from tests.unit.media.images import encode, halves

pytestmark = pytest.mark.integration


def _processed(uploads: Uploads, broker: NightshiftRedisBroker, engine: Engine, *, post_id: int | None) -> int:
    media_id = uploads.add(encode(halves(400, 300), "JPEG"), post_id=post_id)
    wait_for_jobs(broker, engine, [uploads.publish(media_id)])
    return media_id


def _media_message_ids(messages: list[Message[Any]]) -> list[str]:
    """The ids of the messages for media (``post.deleted`` also reaches the posts indexer)."""
    return [m.message_id for m in messages if m.queue_name.startswith("media_")]


def test_post_deleted_removes_that_posts_media_only(
    uploads: Uploads, broker: NightshiftRedisBroker, media_worker: object, clean_db: Engine
) -> None:
    doomed = [_processed(uploads, broker, clean_db, post_id=7) for _ in range(2)]
    kept = _processed(uploads, broker, clean_db, post_id=8)
    assert len(list(uploads.storage.list("media/"))) == 18

    jobs = wait_for_jobs(broker, clean_db, _media_message_ids(publish("post.deleted", {"post_id": 7})))
    again = wait_for_jobs(broker, clean_db, _media_message_ids(publish("post.deleted", {"post_id": 7})))

    assert [r.status for r in (*jobs.values(), *again.values())] == ["done", "done"]
    assert [uploads.row(m) for m in doomed] == [None, None]
    for media_id in doomed:
        assert list(uploads.storage.list(f"media/{media_id}/")) == []
        assert list(uploads.storage.list(f"uploads/{media_id}/")) == []
    assert uploads.row(kept) is not None
    assert len(list(uploads.storage.list(f"media/{kept}/"))) == 6
    assert len(list(uploads.storage.list(f"uploads/{kept}/"))) == 1


def test_orphans_past_the_grace_period_are_removed_in_batches(uploads: Uploads, clean_db: Engine) -> None:
    old_orphans = [uploads.add(b"a"), uploads.add(b"b"), uploads.add(b"c")]
    attached_old = uploads.add(b"d", post_id=3)
    recent_orphan = uploads.add(b"e")
    with Session(clean_db) as session, session.begin():
        session.execute(
            update(Media)
            .where(Media.id.in_([*old_orphans, attached_old]))
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        )

    factory = runtime.session_factory()
    removed = removal.cleanup_orphan_media(factory, uploads.storage, grace=dt.timedelta(days=1), batch_size=2)
    again = removal.cleanup_orphan_media(factory, uploads.storage, grace=dt.timedelta(days=1), batch_size=2)

    assert (removed, again) == (3, 0)
    with Session(clean_db) as session:
        left = session.scalars(select(Media.id).order_by(Media.id)).all()
    assert left == [attached_old, recent_orphan]
    assert sorted(uploads.storage.list("uploads/")) == [
        f"uploads/{attached_old}/photo.jpg",
        f"uploads/{recent_orphan}/photo.jpg",
    ]
