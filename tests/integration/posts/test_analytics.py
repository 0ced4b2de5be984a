"""Daily analytics: one row per local day, robust anomaly detection, exactly one alert, emailed to the operators."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import nightshift.notifications.actors  # declares send_ops_alert for the worker below
import nightshift.ops.actors  # noqa: F401 - record_raised_alert and deliver_alert_notice: the alert's way to the mail
from nightshift.common import runtime
from nightshift.common.outbox import OutboxRelay
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.posts.analytics import day_bounds, generate_content_analytics
from tests.integration.posts.conftest import Content

pytestmark = pytest.mark.integration

PARIS = "Europe/Paris"
#: A Tuesday; the history is the six Tuesdays before it (across the end of summer time on 25 October).
DAY = dt.date(2026, 11, 17)


def _activity(
    content: Content,
    people: tuple[list[int], list[int]],
    day: dt.date,
    *,
    posts: int,
    likes: int,
    comments: int,
    shares: int,
) -> None:
    """*day*'s activity, set-based: posts by round-robin authors, reactions on the first post, at local noon-ish."""
    authors, readers = people
    start, _ = day_bounds(day, PARIS)
    noon = start + dt.timedelta(hours=12)
    with content.engine.begin() as connection:
        ids = [
            row[0]
            for row in connection.exec_driver_sql(
                "INSERT INTO posts (author_id, body, created_at) "
                "SELECT (%(authors)s::bigint[])[1 + g %% cardinality(%(authors)s::bigint[])], "
                "'#daily post', %(noon)s + make_interval(mins => g) FROM generate_series(1, %(n)s) g RETURNING id",
                {"authors": authors, "noon": noon, "n": posts},
            )
        ]
        for table, count in (("post_likes", likes), ("comments", comments), ("shares", shares)):
            # Comments are written by the authors (active authors stay 4); likes and shares by readers.
            user_column, users = ("author_id", authors) if table == "comments" else ("user_id", readers)
            connection.exec_driver_sql(
                f"INSERT INTO {table} (post_id, {user_column}, created_at) "  # noqa: S608 - names from this test
                "SELECT %(p)s, (%(users)s::bigint[])[1 + g %% cardinality(%(users)s::bigint[])], "
                "%(noon)s + make_interval(secs => g) FROM generate_series(1, %(n)s) g",
                {"p": ids[0], "users": users, "noon": noon, "n": count},
            )
        connection.exec_driver_sql("INSERT INTO hashtags (tag) VALUES ('daily') ON CONFLICT DO NOTHING")
        connection.exec_driver_sql(
            "INSERT INTO post_hashtags (post_id, hashtag_id) SELECT unnest(%(ids)s::bigint[]), id FROM hashtags "
            "WHERE tag = 'daily'",
            {"ids": ids},
        )


def _alerts(content: Content) -> list[tuple[object, ...]]:
    return content.table("SELECT payload FROM outbox_events WHERE event_name = 'ops.alert_raised' ORDER BY id")


def test_a_normal_day_raises_nothing_an_anomalous_day_exactly_one_alert(
    content: Content,
    sessions: sessionmaker[Session],
    broker: NightshiftRedisBroker,
    run_worker: Any,
    clean_db: Engine,
    env: CommonSettings,
) -> None:
    authors = ([content.user() for _ in range(4)], [content.user() for _ in range(60)])
    history = [DAY - dt.timedelta(weeks=k) for k in range(6, 0, -1)]
    for k, day in enumerate(history):
        _activity(content, authors, day, posts=10 + k % 3, likes=20 + k, comments=5 + k % 2, shares=2)
        report = generate_content_analytics(sessions, day=day, timezone=PARIS)
        assert not report.alert_raised
        assert (report.history_days, bool(report.findings)) == (k, k >= 4)
    _activity(content, authors, DAY, posts=11, likes=22, comments=5, shares=2)
    anomalous_day = DAY + dt.timedelta(weeks=1)
    _activity(content, authors, anomalous_day, posts=60, likes=21, comments=6, shares=2)
    # Activity on the days around must not leak in (local day bounds).
    _activity(content, authors, DAY + dt.timedelta(days=1), posts=50, likes=50, comments=50, shares=50)

    normal = generate_content_analytics(sessions, day=DAY, timezone=PARIS)
    first = generate_content_analytics(sessions, day=anomalous_day, timezone=PARIS)
    second = generate_content_analytics(sessions, day=anomalous_day, timezone=PARIS)

    assert normal.counts == {
        "posts": 11,
        "active_authors": 4,
        "likes": 22,
        "comments": 5,
        "shares": 2,
        "media_processed": 0,
    }
    assert normal.findings and not normal.anomalies and not normal.alert_raised
    assert [f.metric for f in first.anomalies] == ["posts"]
    assert first.anomalies[0].median == 11 and first.anomalies[0].z > 3.5
    assert (first.alert_raised, second.alert_raised) == (True, False)
    assert second.counts == first.counts
    rows = content.table("SELECT day, posts, anomalies->0->>'metric', top_hashtags FROM content_analytics ORDER BY day")
    assert [row[0] for row in rows] == [*history, DAY, anomalous_day]
    assert rows[-1][1:] == (60, "posts", [{"tag": "daily", "posts": 60}])
    [(alert,)] = _alerts(content)
    assert isinstance(alert, dict)
    assert alert["alert_key"] == f"posts:content_anomaly:{anomalous_day.isoformat()}"
    assert (alert["source"], alert["kind"], alert["severity"]) == ("posts", "content_anomaly", "warning")
    assert "posts 60 (usual 11)" in alert["summary"]

    # The alert reaches the operators' mailbox through the outbox relay, the ops alert lifecycle
    # and the notifications worker.
    runtime.reset()
    run_worker({"notifications_critical", "ops_normal"}, threads=1)
    messages = OutboxRelay(clean_db, broker).drain()
    assert messages >= 1

    def alert_jobs() -> list[tuple[object, ...]]:
        broker.record_writer.flush()
        return content.table("SELECT status FROM job_records WHERE actor = 'send_ops_alert' AND status = 'done'")

    assert wait_for(alert_jobs, what="the send_ops_alert job") == [("done",)]
    outbox = Path(env.outbox_dir)
    [email] = wait_for(lambda: list(outbox.glob("*.eml")), what="the alert email")
    raw = email.read_text()
    assert "To: Nightshift operators <operators@nightshift.local>" in raw
    assert "Unusual content activity on 2026-11-24" in raw
