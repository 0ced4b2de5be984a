"""Real processes: a weekly cleanup run deletes an old post, and media removes its files from storage."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, text

from nightshift.common import runtime
from nightshift.common.processes import wait_for
from nightshift.common.settings import CommonSettings
from tests.support.processes import nightshift, service_process

pytestmark = pytest.mark.e2e


def test_a_cleaned_up_posts_media_leave_storage(
    env: CommonSettings, redis_client: redis.Redis[bytes], clean_db: Engine, tmp_path: Path
) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    storage = runtime.storage()
    with clean_db.begin() as connection:
        user = connection.execute(text("INSERT INTO users (email, display_name) VALUES ('a@b.test', 'A') RETURNING id"))
        author = user.scalar_one()
        doomed, kept = (
            connection.execute(
                text("INSERT INTO posts (author_id, body, created_at) VALUES (:a, :b, :c) RETURNING id"),
                {"a": author, "b": body, "c": old},
            ).scalar_one()
            for body in ("forgotten #holiday photos", "loved #holiday photos")
        )
        connection.execute(text("INSERT INTO post_likes (post_id, user_id) VALUES (:p, :u)"), {"p": kept, "u": author})
        media = {}
        for post in (doomed, kept):
            media[post] = connection.execute(
                text(
                    "INSERT INTO media (owner_id, post_id, original_key, status, variants) "
                    "VALUES (:o, :p, :k, 'processed', CAST(:v AS jsonb)) RETURNING id"
                ),
                {
                    "o": author,
                    "p": post,
                    "k": f"uploads/{post}/original.jpg",
                    "v": json.dumps(
                        {"thumb": {"width": 1, "height": 1, "webp": {"key": f"media/{post}/thumb.webp", "bytes": 1}}}
                    ),
                },
            ).scalar_one()
    for post in (doomed, kept):
        storage.put(f"uploads/{post}/original.jpg", b"jpeg")
        storage.put(f"media/{post}/thumb.webp", b"webp")

    workers = [["-m", "nightshift.common.cli", "worker", name, "--health-port", "0"] for name in ("posts", "media")]
    with service_process(workers[0], tmp_path / "posts.log"), service_process(workers[1], tmp_path / "media.log"):
        fired = nightshift("schedule", "run", "cleanup_old_posts")
        assert fired.returncode == 0, fired.stderr

        wait_for(
            lambda: not list(storage.list(f"uploads/{doomed}/")) and not list(storage.list(f"media/{doomed}/")),
            timeout=60,
            what="the deleted post's files to leave storage",
        )

    with clean_db.connect() as connection:
        assert connection.execute(text("SELECT id FROM posts ORDER BY id")).scalars().all() == [kept]
        assert connection.execute(text("SELECT post_id FROM media")).scalars().all() == [kept]
        events = connection.execute(
            text("SELECT payload->>'post_id', sent_at IS NOT NULL FROM outbox_events WHERE event_name = 'post.deleted'")
        ).all()
    assert [tuple(e) for e in events] == [(str(doomed), True)]
    assert sorted(storage.list(f"uploads/{kept}/")) == [f"uploads/{kept}/original.jpg"]
    assert sorted(storage.list(f"media/{kept}/")) == [f"media/{kept}/thumb.webp"]


def test_the_posts_commands(env: CommonSettings, redis_client: redis.Redis[bytes], clean_db: Engine) -> None:
    with clean_db.begin() as connection:
        author = connection.execute(
            text("INSERT INTO users (email, display_name) VALUES ('a@b.test', 'A') RETURNING id")
        ).scalar_one()
        connection.execute(
            text("INSERT INTO posts (author_id, body, language) VALUES (:a, 'Un café en terrasse', 'fr')"),
            {"a": author},
        )

    assert nightshift("posts", "search", "cafe").stdout.strip() == "no match"  # never indexed
    rebuilt = nightshift("posts", "reindex", "--here")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "done: 1 documents live" in rebuilt.stdout
    found = nightshift("posts", "search", "cafe")
    assert "Un café en terrasse" in found.stdout

    queued = nightshift("posts", "reindex")
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.split()[1:] == ["reindex_search", "->", "posts_low"]
    missing = nightshift("posts", "trending")
    assert missing.returncode == 1 and "no ranking cached" in missing.stderr
