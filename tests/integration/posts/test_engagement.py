"""Engagement scores follow the documented formula, in batches, writing only what changed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nightshift.posts.engagement import engagement_score, update_post_engagement_scores
from tests.integration.posts.conftest import Content

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 18)
PARIS = "Europe/Paris"


def test_scores_match_hand_computed_rows_and_reruns_write_nothing(
    content: Content, sessions: sessionmaker[Session]
) -> None:
    fresh = content.post(created_at=dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.UTC))
    week_old = content.post(created_at=dt.datetime(2026, 11, 11, 10, 0, tzinfo=dt.UTC))
    # 23:30 UTC on the 15th is 00:30 on the 16th in Paris: two local days old, not three.
    two_days = content.post(created_at=dt.datetime(2026, 11, 15, 23, 30, tzinfo=dt.UTC))
    quiet = content.post(created_at=dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC))
    shared = content.post(created_at=dt.datetime(2026, 11, 8, 10, 0, tzinfo=dt.UTC))
    content.likes(fresh, 2)
    content.comments(fresh, 1)
    content.shares(fresh, 1)
    content.likes(week_old, 4)
    content.likes(two_days, 1)
    content.comments(two_days, 2)
    content.shares(shared, 3)

    first = update_post_engagement_scores(sessions, as_of=AS_OF, timezone=PARIS, batch_size=2)
    second = update_post_engagement_scores(sessions, as_of=AS_OF, timezone=PARIS, batch_size=2)

    rows = {r[0]: r[1:] for r in content.table("SELECT post_id, likes, comments, shares, score FROM post_engagement")}
    assert rows == {
        fresh: (2, 1, 1, Decimal("10.0000")),  # (2 + 3 + 5) x 0.5^0
        week_old: (4, 0, 0, Decimal("2.0000")),  # 4 x 0.5^(7/7)
        two_days: (1, 2, 0, Decimal("5.7423")),  # 7 x 0.5^(2/7) = 5.74235
        quiet: (0, 0, 0, Decimal("0.0000")),
        shared: (0, 0, 3, Decimal("5.5725")),  # 15 x 0.5^(10/7) = 5.57248
    }
    ages = {fresh: 0, week_old: 7, two_days: 2, shared: 10}
    assert {post: engagement_score(rows[post][0], rows[post][1], rows[post][2], age) for post, age in ages.items()} == {
        post: rows[post][3] for post in ages
    }
    assert (first.batches, first.rows_written) == (3, 5)
    assert (second.batches, second.rows_written) == (3, 0)

    content.likes(week_old, 1)
    third = update_post_engagement_scores(sessions, as_of=AS_OF, timezone=PARIS, batch_size=2)
    assert third.rows_written == 1
    assert content.table("SELECT score FROM post_engagement WHERE post_id = :p", p=week_old) == [(Decimal("2.5000"),)]

    next_day = update_post_engagement_scores(sessions, as_of=AS_OF + dt.timedelta(days=1), timezone=PARIS)
    assert next_day.rows_written == 4  # every score with engagement decays; the quiet post stays 0
