"""Cleanup deletes exactly the old posts without engagement, in batches, one post.deleted each through the outbox."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nightshift.posts.cleanup import cleanup_old_posts
from tests.integration.posts.conftest import NOW, Content

pytestmark = pytest.mark.integration

RETENTION = dt.timedelta(days=365)


def test_only_old_unengaged_posts_go_each_with_one_post_deleted_event(
    content: Content, sessions: sessionmaker[Session]
) -> None:
    old = NOW - RETENTION - dt.timedelta(days=3)
    doomed = [content.post(f"old #quiet {n}", created_at=old, index=True) for n in range(5)]
    liked, commented, shared = (content.post("old but loved", created_at=old) for _ in range(3))
    content.likes(liked, 1)
    content.comments(commented, 1)
    content.shares(shared, 1)
    recent = content.post("recent, no engagement", created_at=NOW - RETENTION + dt.timedelta(days=1))

    first = cleanup_old_posts(sessions, retention=RETENTION, batch_size=2, now=NOW)
    second = cleanup_old_posts(sessions, retention=RETENTION, batch_size=2, now=NOW)

    assert (first.deleted, first.batches) == (5, 3)
    assert (second.deleted, second.batches) == (0, 1)
    remaining = [row[0] for row in content.table("SELECT id FROM posts ORDER BY id")]
    assert remaining == sorted([liked, commented, shared, recent])
    events = content.table(
        "SELECT event_name, payload->>'post_id', aggregate_id FROM outbox_events ORDER BY (payload->>'post_id')::int"
    )
    assert events == [("post.deleted", str(post), f"post:{post}") for post in doomed]
    assert content.table("SELECT count(*) FROM search_documents") == [(0,)]
    assert content.table("SELECT count(*) FROM post_hashtags") == [(0,)]
