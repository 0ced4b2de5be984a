"""Hashtags and search documents follow post.created / post.updated / post.deleted through a real worker."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.errors import InvalidEvent
from nightshift.common.events import publish
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.posts.search import search_posts
from tests.integration.posts.conftest import Content, wait_for_jobs

pytestmark = pytest.mark.integration


def _index_jobs(messages: list[Any]) -> list[str]:
    return [m.message_id for m in messages if m.queue_name == "posts_high"]


def _search(content: Content, query: str) -> list[int]:
    with content.sessions() as session:
        return [hit.post_id for hit in search_posts(session, query)]


def test_created_updated_deleted_keep_hashtags_and_search_current(
    content: Content, broker: NightshiftRedisBroker, posts_worker: object, clean_db: Engine
) -> None:
    post = content.post("Un #café au lait, #Café noir, #CAFÉ crème et un #cafe\u0301", language="fr")

    for _ in range(2):  # a redelivered event changes nothing
        jobs = wait_for_jobs(broker, clean_db, _index_jobs(publish("post.created", {"post_id": post})))
        assert [job.status for job in jobs.values()] == ["done"]
        assert content.tags(post) == ["café"]
        assert content.table("SELECT count(*) FROM hashtags") == [(1,)]
        assert _search(content, "cafe") == [post]

    with clean_db.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE posts SET body = 'Thé vert #tea #Matcha', language = 'en', updated_at = now() WHERE id = %(p)s",
            {"p": post},
        )
    wait_for_jobs(broker, clean_db, _index_jobs(publish("post.updated", {"post_id": post})))
    assert content.tags(post) == ["matcha", "tea"]
    assert _search(content, "cafe") == []
    assert _search(content, "vert") == _search(content, "#matcha") == [post]
    assert content.table("SELECT config FROM search_documents WHERE post_id = :p", p=post) == [("nightshift_en",)]

    with clean_db.begin() as connection:
        connection.exec_driver_sql("DELETE FROM posts WHERE id = %(p)s", {"p": post})
    assert _search(content, "matcha") == []  # gone with the post, before any event
    jobs = wait_for_jobs(broker, clean_db, _index_jobs(publish("post.deleted", {"post_id": post})))
    assert [job.status for job in jobs.values()] == ["done"]
    assert content.table("SELECT count(*) FROM post_hashtags") == [(0,)]
    assert content.table("SELECT count(*) FROM search_documents") == [(0,)]


def test_bad_events_are_refused_or_dead_lettered_with_their_reason(
    content: Content, broker: NightshiftRedisBroker, posts_worker: object, clean_db: Engine
) -> None:
    with pytest.raises(InvalidEvent, match="post_id"):
        publish("post.created", {"post_id": "seven"})
    with pytest.raises(InvalidEvent, match="body: Extra inputs are not permitted"):
        publish("post.created", {"post_id": 3, "body": "personal data has no place in an event"})
    assert broker.client.llen(broker.keys.queue("posts_high")) == 0  # type: ignore[attr-defined]

    huge = content.post("#big " + "x" * 20_001)
    missing = huge + 1000
    jobs = wait_for_jobs(
        broker,
        clean_db,
        _index_jobs([*publish("post.created", {"post_id": missing}), *publish("post.created", {"post_id": huge})]),
    )

    assert sorted((job.status, job.attempts) for job in jobs.values()) == [("dead", 1), ("dead", 1)]
    reasons = sorted((letter.error_type, letter.reason) for letter in list_dead_letters(broker, "posts_high"))
    assert reasons == [
        ("NotFound", f"post {missing} does not exist"),
        ("PostRejected", f"post {huge}: body is 20006 characters, over the 20000 limit"),
    ]
    assert content.table("SELECT count(*) FROM search_documents") == [(0,)]
