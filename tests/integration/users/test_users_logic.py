"""Token cleanup in bounded batches and set-based statistics, on real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from nightshift.common.db.engine import make_session_factory
from nightshift.common.db.models import AuthToken, UserSession, UserStats
from nightshift.users.statistics import update_user_statistics
from nightshift.users.tokens import cleanup_expired_tokens

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in _SEED.split(";"):
            if statement.strip():
                connection.execute(text(statement), {"now": NOW})


_SEED = """
                INSERT INTO users (id, email, display_name, last_active_at)
                SELECT g, 'u' || g || '@example.org', 'User ' || g, :now - g * interval '1 day'
                FROM generate_series(1, 3) g;
                INSERT INTO auth_tokens (user_id, kind, token_hash, expires_at, revoked_at)
                SELECT 1 + g % 3, 'refresh', md5(g::text), :now + (g % 4 - 2) * interval '1 day',
                       CASE WHEN g % 5 = 0 THEN :now END
                FROM generate_series(1, 100) g;
                INSERT INTO user_sessions (user_id, last_seen_at)
                SELECT 1 + g % 3, :now - g * interval '1 day' FROM generate_series(1, 40) g;
                INSERT INTO posts (id, author_id, created_at) VALUES (1, 1, :now), (2, 1, :now), (3, 2, :now);
                INSERT INTO post_likes (post_id, user_id) VALUES (1, 2), (1, 3), (2, 3), (3, 1);
                INSERT INTO comments (post_id, author_id, created_at) VALUES (1, 2, :now + interval '1 hour');
"""


def test_cleanup_deletes_exactly_the_expired_revoked_and_stale_in_batches(clean_db: Engine) -> None:
    _seed(clean_db)
    with Session(clean_db) as session:
        doomed = session.scalar(
            select(func.count()).where((AuthToken.expires_at < NOW) | AuthToken.revoked_at.is_not(None))
        )
        kept = 100 - (doomed or 0)

    result = cleanup_expired_tokens(
        make_session_factory(clean_db), batch_size=7, session_retention=dt.timedelta(days=30), now=NOW
    )

    assert result.tokens_deleted == doomed
    assert result.sessions_deleted == 10
    assert result.batches > (doomed or 0) // 7
    with Session(clean_db) as session:
        assert session.scalar(select(func.count()).select_from(AuthToken)) == kept
        assert session.scalar(select(func.count()).select_from(UserSession)) == 30
    again = cleanup_expired_tokens(
        make_session_factory(clean_db), batch_size=7, session_retention=dt.timedelta(days=30), now=NOW
    )
    assert (again.tokens_deleted, again.sessions_deleted) == (0, 0)


def test_statistics_are_recomputed_and_a_second_run_writes_nothing(clean_db: Engine) -> None:
    _seed(clean_db)

    assert update_user_statistics(make_session_factory(clean_db)) == 3
    with Session(clean_db) as session:
        stats = {s.user_id: s for s in session.scalars(select(UserStats))}
    assert (stats[1].posts_count, stats[1].likes_received, stats[1].comments_received) == (2, 3, 1)
    assert (stats[2].posts_count, stats[2].likes_received, stats[2].comments_received) == (1, 1, 0)
    assert (stats[3].posts_count, stats[3].likes_received) == (0, 0)
    assert stats[1].last_activity_at == NOW + dt.timedelta(hours=1)
    assert update_user_statistics(make_session_factory(clean_db)) == 0
