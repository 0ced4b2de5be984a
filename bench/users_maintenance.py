"""The users service's maintenance at scale, against a naive per-row ORM loop.

Generates (set-based, with ``generate_series``) users, auth/refresh tokens,
sessions and enough posts, likes and comments for the statistics to mean
something — by default 1 million users and 5 million tokens — then times:

* ``update_user_statistics(sessions)``: from an empty ``user_stats`` (every row
  written) and re-run with nothing changed (nothing written), median of
  ``--runs``;
* ``cleanup_expired_tokens(sessions, …)``: median of ``--runs``; the deleted rows
  are restored from a copy and the tables vacuumed between runs, so each run
  deletes the same rows from the same table;
* the naive version of each — a Python loop over ORM objects, one user or one
  token at a time — measured in the same run on a sample (the first
  ``--naive-users`` users and their tokens), because over a million users it
  would take hours; its time for the full data set is extrapolated from its
  rows per second, and says so.

Run it with ``python -m bench.users_maintenance`` (``--users 20000`` for a quick run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine, and_, func, or_, select, text
from sqlalchemy.orm import Session

from bench._common import header, median, servers
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.db.models import AuthToken, Comment, Post, PostLike, User, UserSession, UserStats
from nightshift.users.statistics import update_user_statistics
from nightshift.users.tokens import cleanup_expired_tokens

T = TypeVar("T")

#: Tables the benchmark fills (emptied first).
TABLES = ("user_stats", "comments", "post_likes", "posts", "user_sessions", "auth_tokens", "users")

#: Copies of the rows the cleanup deletes, to restore them between runs.
DELETED_TOKENS = "bench_deleted_tokens"
DELETED_SESSIONS = "bench_deleted_sessions"

#: How many naive-loop users are written per commit (a per-user commit would be slower still).
NAIVE_COMMIT_EVERY = 1000


@dataclass(frozen=True)
class Sizes:
    users: int
    tokens_per_user: int
    sessions_per_user: int
    posts_per_user: float
    likes_per_post: int
    comments_per_post: float

    @property
    def tokens(self) -> int:
        return self.users * self.tokens_per_user

    @property
    def posts(self) -> int:
        return max(1, int(self.users * self.posts_per_user))


# --- data -------------------------------------------------------------------------------

# Every statement takes :users, :posts, :now. Tokens: 40 % expired, another 5 %
# revoked; sessions: last seen 0 to 59 days ago; authors of posts are skewed (a few
# prolific users, many silent ones, spread over the ids so that any range of ids
# is a fair sample); likes per post vary from 0 to twice the average.
_GENERATE = (
    """
    INSERT INTO users (id, email, display_name, locale, created_at, last_active_at)
    SELECT g, 'user' || g || '@example.test', 'User ' || g,
           CASE WHEN g % 5 = 0 THEN 'fr' ELSE 'en' END,
           :now - make_interval(days => (g % 1000)::int),
           CASE WHEN g % 10 = 0 THEN NULL ELSE :now - make_interval(days => (g % 90)::int) END
    FROM generate_series(1, :users) g
    """,
    """
    INSERT INTO auth_tokens (id, user_id, kind, token_hash, created_at, expires_at, revoked_at)
    SELECT g, (g - 1) % :users + 1,
           CASE WHEN g % 2 = 0 THEN 'access' ELSE 'refresh' END,
           md5(g::text),
           :now - make_interval(days => (g % 60)::int),
           CASE WHEN g % 10 < 4 THEN :now - make_interval(hours => (g % 700 + 1)::int)
                ELSE :now + make_interval(hours => (g % 700 + 1)::int) END,
           CASE WHEN g % 20 = 5 THEN :now - interval '1 hour' END
    FROM generate_series(1, :tokens) g
    """,
    """
    INSERT INTO user_sessions (id, user_id, created_at, last_seen_at)
    SELECT g, (g - 1) % :users + 1, :now - make_interval(days => (g % 90)::int),
           :now - make_interval(days => (g % 60)::int, secs => (g % 86400)::int)
    FROM generate_series(1, :sessions) g
    """,
    """
    INSERT INTO posts (id, author_id, body, created_at)
    SELECT g, (floor(:users * power(random(), 3))::bigint * 7919) % :users + 1, '',
           :now - make_interval(days => (g % 365)::int)
    FROM generate_series(1, :posts) g
    """,
    """
    INSERT INTO post_likes (post_id, user_id, created_at)
    SELECT p, (p * 31 + k * 7919) % :users + 1, :now - make_interval(mins => (k * 17)::int)
    FROM generate_series(1, :posts) p, generate_series(1, (p % (2 * :likes_per_post + 1))::int) k
    ON CONFLICT DO NOTHING
    """,
    """
    INSERT INTO comments (id, post_id, author_id, body, created_at)
    SELECT g, (g * 13) % :posts + 1, (g * 17) % :users + 1, '',
           :now - make_interval(days => (g % 200)::int)
    FROM generate_series(1, :comments) g
    """,
)


def generate(engine: Engine, sizes: Sizes, now: dt.datetime) -> dict[str, int]:
    """Fill the tables; return their row counts."""
    params = {
        "users": sizes.users,
        "tokens": sizes.tokens,
        "sessions": sizes.users * sizes.sessions_per_user,
        "posts": sizes.posts,
        "likes_per_post": sizes.likes_per_post,
        "comments": int(sizes.posts * sizes.comments_per_post),
        "now": now,
    }
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        connection.execute(text("SELECT setseed(0.42)"))
        superuser = connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
        if superuser:
            # Skip the foreign-key triggers while loading consistent data: minutes saved.
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in _GENERATE:
            connection.execute(text(statement), params)
        for table in ("users", "auth_tokens", "user_sessions", "posts", "comments"):
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
        connection.execute(text(f"DROP TABLE IF EXISTS {DELETED_TOKENS}, {DELETED_SESSIONS}"))
    vacuum(engine, *TABLES)
    with engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("users", "auth_tokens", "user_sessions", "posts", "post_likes", "comments")
        }


def vacuum(engine: Engine, *tables: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {', '.join(tables)}"))


def keep_deleted_rows(engine: Engine, now: dt.datetime, retention: dt.timedelta) -> None:
    """Copy the rows the cleanup will delete, to put them back between runs."""
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE UNLOGGED TABLE {DELETED_TOKENS} AS SELECT * FROM auth_tokens "
                "WHERE expires_at < :now OR revoked_at IS NOT NULL"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                f"CREATE UNLOGGED TABLE {DELETED_SESSIONS} AS SELECT * FROM user_sessions WHERE last_seen_at < :cutoff"
            ),
            {"cutoff": now - retention},
        )


def restore_deleted_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"INSERT INTO auth_tokens SELECT * FROM {DELETED_TOKENS} ON CONFLICT DO NOTHING"))
        connection.execute(text(f"INSERT INTO user_sessions SELECT * FROM {DELETED_SESSIONS} ON CONFLICT DO NOTHING"))
    vacuum(engine, "auth_tokens", "user_sessions")


# --- the naive versions -----------------------------------------------------------------


def naive_user_statistics(engine: Engine, max_user_id: int) -> int:
    """The per-user ORM loop that set-based SQL replaces; return how many users it visited."""
    visited = 0
    with Session(engine) as session:
        users = session.scalars(select(User).where(User.id <= max_user_id).order_by(User.id)).all()
        for user in users:
            posts, last_post = session.execute(
                select(func.count(Post.id), func.max(Post.created_at)).where(Post.author_id == user.id)
            ).one()
            likes = session.scalar(
                select(func.count()).select_from(PostLike).join(Post).where(Post.author_id == user.id)
            )
            comments, last_comment = session.execute(
                select(func.count(Comment.id), func.max(Comment.created_at))
                .join(Post, Comment.post_id == Post.id)
                .where(Post.author_id == user.id)
            ).one()
            stats = session.get(UserStats, user.id) or UserStats(user_id=user.id)
            stats.posts_count = posts
            stats.likes_received = likes or 0
            stats.comments_received = comments
            moments = [m for m in (user.last_active_at, last_post, last_comment) if m is not None]
            stats.last_activity_at = max(moments) if moments else None
            stats.updated_at = dt.datetime.now(dt.UTC)
            session.add(stats)
            visited += 1
            if visited % NAIVE_COMMIT_EVERY == 0:
                session.commit()
        session.commit()
    return visited


def naive_cleanup(engine: Engine, max_user_id: int, now: dt.datetime, retention: dt.timedelta) -> int:
    """Load each expired token and stale session of the sample as an object and delete it."""
    deleted = 0
    with Session(engine) as session:
        sample = AuthToken.user_id <= max_user_id
        expired = or_(AuthToken.expires_at < now, AuthToken.revoked_at.is_not(None))
        for token in session.scalars(select(AuthToken).where(and_(sample, expired))):
            session.delete(token)
            deleted += 1
        stale = and_(UserSession.user_id <= max_user_id, UserSession.last_seen_at < now - retention)
        for user_session in session.scalars(select(UserSession).where(stale)):
            session.delete(user_session)
            deleted += 1
        session.commit()
    return deleted


def sample_stats(engine: Engine, max_user_id: int) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT user_id, posts_count, likes_received, comments_received, last_activity_at "
                "FROM user_stats WHERE user_id <= :n ORDER BY user_id"
            ),
            {"n": max_user_id},
        )
        return [tuple(row) for row in rows]


# --- the driver -------------------------------------------------------------------------


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    outcome = action()
    return time.perf_counter() - started, outcome


def fmt_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--tokens-per-user", type=int, default=5)
    parser.add_argument("--sessions-per-user", type=int, default=1)
    parser.add_argument("--posts-per-user", type=float, default=1.0)
    parser.add_argument("--likes-per-post", type=int, default=3, help="average")
    parser.add_argument("--comments-per-post", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each set-based task")
    parser.add_argument("--naive-users", type=int, default=20_000, help="sample size of the naive loops")
    parser.add_argument("--batch-size", type=int, default=5000, help="cleanup batch (USERS_CLEANUP_BATCH_SIZE)")
    parser.add_argument("--session-retention-days", type=int, default=30)
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # stop embedded servers too

    sizes = Sizes(
        users=options.users,
        tokens_per_user=options.tokens_per_user,
        sessions_per_user=options.sessions_per_user,
        posts_per_user=options.posts_per_user,
        likes_per_post=options.likes_per_post,
        comments_per_post=options.comments_per_post,
    )
    sample = min(options.naive_users, sizes.users)
    retention = dt.timedelta(days=options.session_retention_days)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    with servers("users_maintenance", redis=False) as running:
        engine = make_engine(running.database_url, pool_size=2)
        sessions = make_session_factory(engine)
        print(header("Users maintenance: set-based SQL vs a naive per-row ORM loop"))
        seconds, counts = timed(lambda: generate(engine, sizes, now))
        print(f"  generated in {fmt_duration(seconds)}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
        keep_deleted_rows(engine, now, retention)

        # update_user_statistics
        full = []
        for _ in range(options.runs):
            with engine.begin() as connection:
                connection.execute(text("TRUNCATE user_stats"))
            seconds, written = timed(lambda: update_user_statistics(sessions))
            full.append(seconds)
            print(f"  update_user_statistics from empty: {fmt_duration(seconds)} ({written} rows written)")
        unchanged = []
        for _ in range(options.runs):
            seconds, written = timed(lambda: update_user_statistics(sessions))
            unchanged.append(seconds)
            print(f"  update_user_statistics unchanged:  {fmt_duration(seconds)} ({written} rows written)")
        expected = sample_stats(engine, sample)
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM user_stats WHERE user_id <= :n"), {"n": sample})
        naive_seconds, _ = timed(lambda: naive_user_statistics(engine, sample))
        agree = sample_stats(engine, sample) == expected
        print(
            f"  naive ORM loop over {sample} users: {fmt_duration(naive_seconds)} "
            f"({'same counters as the set-based run' if agree else 'DIFFERENT counters from the set-based run'})"
        )

        # cleanup_expired_tokens
        cleanup = []
        deleted = 0
        for run in range(options.runs):
            if run:
                restore_deleted_rows(engine)
            seconds, result = timed(
                lambda: cleanup_expired_tokens(
                    sessions, batch_size=options.batch_size, session_retention=retention, now=now
                )
            )
            cleanup.append(seconds)
            deleted = result.tokens_deleted + result.sessions_deleted
            print(f"  cleanup_expired_tokens: {fmt_duration(seconds)} ({result})")
        restore_deleted_rows(engine)
        naive_cleanup_seconds, naive_deleted = timed(lambda: naive_cleanup(engine, sample, now, retention))
        print(f"  naive ORM cleanup of users 1..{sample}: {fmt_duration(naive_cleanup_seconds)} ({naive_deleted} rows)")

        stats_rate = sizes.users / median(full)
        naive_stats_rate = sample / naive_seconds
        cleanup_rate = deleted / median(cleanup)
        naive_cleanup_rate = naive_deleted / naive_cleanup_seconds
        print("\nSummary (medians)")
        print(
            f"  update_user_statistics, {sizes.users} users: {fmt_duration(median(full))} from empty "
            f"({stats_rate:,.0f} users/s), {fmt_duration(median(unchanged))} when nothing changed"
        )
        print(
            f"  naive per-user ORM loop: {naive_stats_rate:,.0f} users/s on {sample} users; "
            f"extrapolated to {sizes.users} users: {fmt_duration(sizes.users / naive_stats_rate)} "
            f"(set-based is {stats_rate / naive_stats_rate:,.0f}x faster)"
        )
        print(
            f"  cleanup_expired_tokens, {sizes.tokens} tokens: {fmt_duration(median(cleanup))} "
            f"for {deleted} rows deleted ({cleanup_rate:,.0f} rows/s, batches of {options.batch_size})"
        )
        print(
            f"  naive per-row ORM delete: {naive_cleanup_rate:,.0f} rows/s on {naive_deleted} rows; "
            f"extrapolated to {deleted} rows: {fmt_duration(deleted / naive_cleanup_rate)} "
            f"(set-based is {cleanup_rate / naive_cleanup_rate:,.1f}x faster)"
        )
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
