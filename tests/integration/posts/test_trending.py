"""Trending: sudden risers on top, always-popular tags not; stored per hour, cached in Redis, repeatable."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common import runtime
from nightshift.posts.trending import LATEST_KEY, update_trending_hashtags
from tests.integration.posts.conftest import NOW, Content

pytestmark = pytest.mark.integration

#: The hour ranked: the last complete hour before NOW (11:00-12:00 UTC).
HOUR = NOW - dt.timedelta(hours=1)


def _tagged(content: Content, tag: str, times: list[dt.datetime], *, likes: int = 0) -> list[int]:
    """Posts using *tag*, written at *times*, each with *likes* likes, set-based."""
    author = content.user()
    liker = content.user()
    with content.engine.begin() as connection:
        ids = [
            row[0]
            for row in connection.exec_driver_sql(
                "INSERT INTO posts (author_id, body, created_at) SELECT %(a)s, %(b)s, unnest(%(t)s::timestamptz[]) "
                "RETURNING id",
                {"a": author, "b": f"#{tag}", "t": times},
            )
        ]
        connection.exec_driver_sql("INSERT INTO hashtags (tag) VALUES (%(t)s) ON CONFLICT DO NOTHING", {"t": tag})
        connection.exec_driver_sql(
            "INSERT INTO post_hashtags (post_id, hashtag_id) SELECT unnest(%(ids)s::bigint[]), id FROM hashtags "
            "WHERE tag = %(t)s",
            {"ids": ids, "t": tag},
        )
        if likes:
            connection.exec_driver_sql(
                "INSERT INTO post_likes (post_id, user_id, created_at) "
                "SELECT p.id, %(u)s, p.created_at + interval '10 minutes' FROM posts p WHERE p.id = ANY(%(ids)s)",
                {"u": liker, "ids": ids},
            )
    return ids


def _every(period: dt.timedelta, *, since: dt.timedelta, until: dt.datetime = NOW) -> list[dt.datetime]:
    moments, moment = [], until - since
    while moment < until:
        moments.append(moment)
        moment += period
    return moments


def _stored(content: Content, hour: dt.datetime) -> list[tuple[object, ...]]:
    return content.table(
        "SELECT rank, tag, score, recent_posts, recent_use, baseline_use FROM trending_hashtags WHERE hour = :h "
        "ORDER BY rank",
        h=hour,
    )


def test_risers_top_the_ranking_always_popular_tags_do_not(content: Content, sessions: sessionmaker[Session]) -> None:
    week = dt.timedelta(days=7, hours=3)
    _tagged(content, "news", _every(dt.timedelta(minutes=20), since=week), likes=1)  # always busy
    _tagged(content, "sport", _every(dt.timedelta(minutes=45), since=week))
    _tagged(content, "eclipse", _every(dt.timedelta(minutes=15), since=dt.timedelta(hours=2)), likes=1)  # from nothing
    _tagged(content, "launch", _every(dt.timedelta(days=2), since=week))
    _tagged(content, "launch", _every(dt.timedelta(minutes=25), since=dt.timedelta(hours=3)))
    _tagged(content, "once", [NOW - dt.timedelta(minutes=5)], likes=1)  # too few posts to trend
    _tagged(
        content,
        "future",
        _every(dt.timedelta(minutes=5), since=dt.timedelta(minutes=30), until=NOW + dt.timedelta(minutes=30)),
    )
    cache: redis.Redis[bytes] = runtime.app_redis()

    ranking = update_trending_hashtags(sessions, cache, now=NOW, top_n=10, cache_ttl_s=600)
    stored = _stored(content, HOUR)
    cached = cache.get(LATEST_KEY)
    again = update_trending_hashtags(sessions, cache, hour=HOUR + dt.timedelta(minutes=42), top_n=10, cache_ttl_s=600)

    assert [entry.tag for entry in ranking[:2]] == ["eclipse", "launch"]
    popular = {entry.tag: entry for entry in ranking if entry.tag in ("news", "sport")}
    assert all(entry.rank > 2 and entry.score < 1.0 for entry in popular.values())
    assert {"once", "future"}.isdisjoint(entry.tag for entry in ranking)
    assert again == ranking
    assert _stored(content, HOUR) == stored
    assert [row[1] for row in stored] == [entry.tag for entry in ranking]
    assert cached is not None and cache.get(LATEST_KEY) == cached
    assert json.loads(cached) == {
        "hour": HOUR.isoformat(),
        "hashtags": [{"rank": e.rank, "tag": e.tag, "score": e.score} for e in ranking],
    }
    assert 0 < cache.ttl(LATEST_KEY) <= 600

    earlier = update_trending_hashtags(sessions, cache, hour=HOUR - dt.timedelta(hours=5), top_n=10)
    assert json.loads(cache.get(LATEST_KEY) or b"{}")["hour"] == HOUR.isoformat()  # an older hour is not "latest"
    assert "eclipse" not in [entry.tag for entry in earlier]
