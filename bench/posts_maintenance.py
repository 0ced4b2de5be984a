"""The posts service's tasks at scale, against naive per-row ORM loops measured in the same run.

Generates, set-based, a social app's content with realistic skew — by default
1,000,000 posts (a few prolific authors; 90 % over the last week, hour by hour,
10 % older than the retention), Zipf-like hashtag popularity with a few planted
risers in the last hours, 10,000,000 likes (a few posts get most of them),
2,000,000 comments and 500,000 shares — then times, median of ``--runs``:

* ``update_post_engagement_scores`` from an empty table and unchanged;
* ``update_trending_hashtags`` for the last hour;
* ``generate_content_analytics`` for yesterday;
* ``cleanup_old_posts`` (the deleted rows are restored between runs);
* ``reindex_search`` (a full rebuild and swap);

each beside its naive version — a Python loop over ORM objects, one row at a time
— run on a sample and extrapolated to the full data set from its rate, which it
says. Then search latency (p50/p99 over ``--queries`` queries: single words,
phrases, hashtags, French accents) and incremental indexing throughput: new posts
published as ``post.created`` and indexed by a real ``nightshift worker posts``
process, end to end through Redis.

Run it with ``python -m bench.posts_maintenance`` (``--posts 50000`` for a quick run).
``--keep-data`` keeps the embedded PostgreSQL's data between runs and reuses data
generated with the same sizes (the generation of 1M posts takes minutes), and
``--only search,cleanup`` runs only the sections named.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench._common import ROOT, Servers, header, median, percentile, servers
from nightshift.common.broker import build_broker
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.db.models import Comment, Post, PostLike, Share
from nightshift.common.events import publish
from nightshift.common.outbox import publish_in_transaction
from nightshift.common.processes import stop_processes
from nightshift.common.settings import CommonSettings
from nightshift.posts.analytics import day_bounds, generate_content_analytics, previous_local_day
from nightshift.posts.cleanup import cleanup_old_posts
from nightshift.posts.engagement import engagement_score, update_post_engagement_scores
from nightshift.posts.models import Hashtag, PostEngagement, PostHashtag, SearchDocument
from nightshift.posts.reindex import reindex_search
from nightshift.posts.search import config_for, search_posts
from nightshift.posts.trending import TrendingEntry, update_trending_hashtags

T = TypeVar("T")

#: The sections, in the order they run (``--only`` picks some).
SECTIONS = ("reindex", "engagement", "trending", "analytics", "cleanup", "search", "indexing")

TIMEZONE = "Europe/Paris"
RETENTION = dt.timedelta(days=365)

#: Words of the generated bodies (English and French, some accented); popularity is Zipf-like by position.
WORDS = [
    "the",
    "night",
    "shift",
    "coffee",
    "code",
    "deploy",
    "team",
    "build",
    "test",
    "release",
    "morning",
    "evening",
    "weekend",
    "music",
    "photo",
    "city",
    "travel",
    "train",
    "bike",
    "garden",
    "cooking",
    "recipe",
    "bread",
    "cheese",
    "wine",
    "book",
    "movie",
    "series",
    "game",
    "match",
    "goal",
    "run",
    "walk",
    "café",
    "été",
    "thé",
    "crème",
    "déploiement",
    "réunion",
    "équipe",
    "soirée",
    "matin",
    "fromage",
    "pain",
    "vélo",
    "jardin",
    "cuisine",
    "recette",
    "musique",
    "voyage",
    "ville",
    "gare",
    "photo",
    "livre",
    "film",
    "série",
    "jeu",
    "match",
    "but",
    "course",
    "marche",
    "école",
    "travail",
    "projet",
    "idée",
    "sunset",
    "sunrise",
    "mountain",
    "river",
    "ocean",
    "beach",
    "forest",
    "snow",
    "rain",
    "storm",
    "cloud",
    "star",
    "moon",
    "light",
    "dark",
    "quiet",
    "loud",
    "happy",
    "tired",
    "busy",
    "calm",
    "fast",
    "slow",
    "early",
    "late",
    "new",
    "old",
    "small",
    "big",
    "first",
    "last",
    "best",
    "worst",
    "favourite",
    "random",
]
#: Hashtags planted as sudden risers: unused until the last hours.
RISERS = ("solareclipse", "launchday", "grève", "newalbum", "finale")
#: Accented hashtags among the popular ones.
ACCENTED = ("café", "été", "crème", "déploiement", "soirée")


@dataclass(frozen=True)
class Sizes:
    posts: int
    likes: int
    comments: int
    shares: int
    users: int
    hashtags: int


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    outcome = action()
    return time.perf_counter() - started, outcome


def fmt(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    if seconds < 0.1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


# --- data -------------------------------------------------------------------------------

_GENERATE = (
    # Users; authors of posts are skewed: a few write a lot.
    "INSERT INTO users (id, email, display_name, locale) "
    "SELECT g, 'u' || g || '@example.test', 'User ' || g, CASE WHEN g % 3 = 0 THEN 'fr' ELSE 'en' END "
    "FROM generate_series(1, :users) g",
    "INSERT INTO hashtags (id, tag) SELECT g, 'tag' || g FROM generate_series(1, :hashtags) g",
    "INSERT INTO hashtags (id, tag) "
    "SELECT :hashtags + o, t FROM unnest(CAST(:accented AS text[])) WITH ORDINALITY AS a(t, o)",
    "INSERT INTO hashtags (id, tag) "
    "SELECT :hashtags + 100 + o, t FROM unnest(CAST(:risers AS text[])) WITH ORDINALITY AS r(t, o)",
    # Posts: 90 % over the last week (hourly activity, busier by day), 10 % older than the retention.
    """
    INSERT INTO posts (id, author_id, body, language, created_at)
    SELECT g,
           (floor(:users * power(random(), 3))::bigint * 7919) % :users + 1,
           array_to_string(ARRAY(
               SELECT (CAST(:words AS text[]))[1 + floor(power(random(), 2) * :nwords)::int]
               FROM generate_series(1, 6 + g % 10) WHERE g > 0), ' '),
           (ARRAY['en', 'en', 'fr', NULL, 'en'])[1 + g % 5],
           CASE WHEN g % 10 = 0 THEN :now - make_interval(days => 400 + (g % 300)::int)
                ELSE :now - make_interval(secs => (power(random(), 1.0) * 7 * 86400)::int) END
    FROM generate_series(1, :posts) g
    """,
    # Hashtags per post: 0-3, Zipf-like (log-uniform over the ids); accented ones are popular.
    """
    INSERT INTO post_hashtags (post_id, hashtag_id)
    SELECT p, CASE WHEN k = 1 AND p % 7 = 0 THEN :hashtags + 1 + p % 5
                   ELSE least(:hashtags, floor(power(:hashtags, random()))::bigint) END
    FROM generate_series(1, :posts) p, generate_series(1, (p % 4)::int) k
    ON CONFLICT DO NOTHING
    """,
    # Planted risers: in posts of the last three hours only.
    """
    INSERT INTO post_hashtags (post_id, hashtag_id)
    SELECT id, :hashtags + 100 + 1 + id % 5 FROM posts
    WHERE created_at > :now - interval '3 hours' AND id % 3 = 0
    ON CONFLICT DO NOTHING
    """,
    # Likes: each post's count is skewed (u^3: most posts few, a few very many), users distinct per post.
    """
    INSERT INTO post_likes (post_id, user_id, created_at)
    SELECT p.id, (p.id * 31 + k * 7919) % :users + 1,
           least(:now, p.created_at + make_interval(mins => (k * 37 % 2880)::int))
    FROM posts p,
         generate_series(1, least(:users - 1, floor(
             4 * :likes_per_post * power(((p.id * 2654435761) % 1000003) / 1000003.0, 3)))::int) k
    """,
    """
    INSERT INTO comments (id, post_id, author_id, body, created_at)
    SELECT g, p.id, (g * 17) % :users + 1, 'nice', least(:now, p.created_at + make_interval(mins => (g % 1440)::int))
    FROM generate_series(1, :comments) g
    JOIN posts p ON p.id = 1 + (floor(:posts * power(((g * 2654435761) % 1000003) / 1000003.0, 2))::bigint)
    """,
    """
    INSERT INTO shares (id, post_id, user_id, created_at)
    SELECT g, p.id, (g * 13) % :users + 1, least(:now, p.created_at + make_interval(mins => (g % 720)::int))
    FROM generate_series(1, :shares) g
    JOIN posts p ON p.id = 1 + (floor(:posts * power(((g::bigint * 40503) % 1000003) / 1000003.0, 2))::bigint)
    """,
)

TABLES = (
    "content_analytics", "trending_hashtags", "post_engagement", "search_documents", "search_maintenance",
    "post_hashtags", "hashtags", "shares", "comments", "post_likes", "posts", "users", "outbox_events",
    "processed_keys",
)  # fmt: skip


def generate(engine: Engine, sizes: Sizes, now: dt.datetime) -> dict[str, int]:
    params = {
        "users": sizes.users,
        "posts": sizes.posts,
        "hashtags": sizes.hashtags,
        "likes_per_post": sizes.likes / sizes.posts,
        "comments": sizes.comments,
        "shares": sizes.shares,
        "words": list(WORDS),
        "nwords": len(WORDS),
        "accented": list(ACCENTED),
        "risers": list(RISERS),
        "now": now,
    }
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS search_documents_rebuild"))
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        connection.execute(text("SELECT setseed(0.42)"))
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in _GENERATE:
            connection.execute(text(statement), params)
        for table in ("users", "posts", "comments", "shares", "hashtags"):
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
    vacuum(engine, "users", "posts", "post_hashtags", "hashtags", "post_likes", "comments", "shares")
    with engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("posts", "post_hashtags", "post_likes", "comments", "shares")
        }


def generated_before(engine: Engine, sizes: Sizes) -> dt.datetime | None:
    """When data of these *sizes* was generated in this database (by a ``--keep-data`` run), or None."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS bench_generated (sizes jsonb NOT NULL, now timestamptz)"))
        row = connection.execute(text("SELECT sizes, now FROM bench_generated")).one_or_none()
    if row is None or row.sizes != json.loads(json.dumps(sizes.__dict__)):
        return None
    return row.now  # type: ignore[no-any-return]


def remember_generated(engine: Engine, sizes: Sizes, now: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM bench_generated"))
        connection.execute(
            text("INSERT INTO bench_generated (sizes, now) VALUES (CAST(:sizes AS jsonb), :now)"),
            {"sizes": json.dumps(sizes.__dict__), "now": now},
        )


#: The tables a cleanup run deletes from (directly or by cascade) that the bench puts back.
CLEANED = ("posts", "post_hashtags", "search_documents", "post_engagement")


def restore_cleanup(engine: Engine, *, drop: bool = True) -> None:
    """Put back what cleanup runs deleted (copied in ``bench_kept_*`` beforehand), if anything.

    Parameters:
      engine: The benchmark's database.
      drop: Drop the copies afterwards (the cleanup section is over).
    """
    with engine.begin() as connection:
        if connection.execute(text("SELECT to_regclass('bench_kept_posts')")).scalar_one() is None:
            return
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        for table in CLEANED:
            connection.execute(text(f"INSERT INTO {table} SELECT * FROM bench_kept_{table} ON CONFLICT DO NOTHING"))
            if drop:
                connection.execute(text(f"DROP TABLE bench_kept_{table}"))
        connection.execute(text("TRUNCATE outbox_events"))
    vacuum(engine, *CLEANED)


def vacuum(engine: Engine, *tables: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {', '.join(tables)}"))


# --- naive versions ---------------------------------------------------------------------


def naive_engagement(sessions: sessionmaker[Session], post_ids: list[int], as_of: dt.date) -> int:
    """Per post: three count queries, the score in Python, an ORM upsert."""
    with sessions() as session:
        for post_id in post_ids:
            post = session.get(Post, post_id)
            if post is None:
                continue
            likes = session.scalar(select(func.count()).select_from(PostLike).where(PostLike.post_id == post_id)) or 0
            comments = session.scalar(select(func.count()).select_from(Comment).where(Comment.post_id == post_id)) or 0
            shares = session.scalar(select(func.count()).select_from(Share).where(Share.post_id == post_id)) or 0
            age = (as_of - post.created_at.date()).days
            row = session.get(PostEngagement, post_id) or PostEngagement(post_id=post_id)
            row.likes, row.comments, row.shares = likes, comments, shares
            row.score = float(engagement_score(likes, comments, shares, age))
            row.as_of = as_of
            session.add(row)
        session.commit()
    return len(post_ids)


def naive_trending_posts(sessions: sessionmaker[Session], post_ids: list[int], window_end: dt.datetime) -> int:
    """Per post of the window and baseline: its hashtags and engagement counts, summed per tag in Python."""
    uses: dict[int, float] = {}
    with sessions() as session:
        for post_id in post_ids:
            post = session.get(Post, post_id)
            if post is None:
                continue
            tags = session.scalars(select(PostHashtag).where(PostHashtag.post_id == post_id)).all()
            if not tags:
                continue
            end = min(post.created_at + dt.timedelta(hours=3), window_end)
            likes = session.scalar(
                select(func.count()).select_from(PostLike).where(PostLike.post_id == post_id, PostLike.created_at < end)
            )
            comments = session.scalar(
                select(func.count()).select_from(Comment).where(Comment.post_id == post_id, Comment.created_at < end)
            )
            shares = session.scalar(
                select(func.count()).select_from(Share).where(Share.post_id == post_id, Share.created_at < end)
            )
            weight = 1 + math.log(1 + (likes or 0) + 2 * (comments or 0) + 3 * (shares or 0))
            for link in tags:
                uses[link.hashtag_id] = uses.get(link.hashtag_id, 0.0) + weight
    return len(post_ids)


def naive_analytics(sessions: sessionmaker[Session], post_ids: list[int]) -> int:
    """Per post of the day: load it and its reactions as objects, count in Python."""
    authors: set[int] = set()
    counts = {"likes": 0, "comments": 0, "shares": 0}
    with sessions() as session:
        for post_id in post_ids:
            post = session.get(Post, post_id)
            if post is None:
                continue
            authors.add(post.author_id)
            counts["likes"] += len(session.scalars(select(PostLike).where(PostLike.post_id == post_id)).all())
            counts["comments"] += len(session.scalars(select(Comment).where(Comment.post_id == post_id)).all())
            counts["shares"] += len(session.scalars(select(Share).where(Share.post_id == post_id)).all())
    return len(post_ids)


def naive_cleanup(sessions: sessionmaker[Session], post_ids: list[int]) -> int:
    """The old posts loaded as objects in one query; per post, up to three existence checks, then
    for one without engagement an ORM delete and an outbox event, committed. Returns how many it deleted."""
    deleted = 0
    with sessions() as session:
        posts = session.scalars(select(Post).where(Post.id.in_(post_ids)).order_by(Post.id)).all()
        for post_id in [post.id for post in posts]:
            engaged = any(
                session.scalar(select(model.post_id).where(model.post_id == post_id).limit(1)) is not None
                for model in (PostLike, Comment, Share)
            )
            if engaged:
                continue
            post = session.get(Post, post_id)
            session.delete(post)
            publish_in_transaction(session, "post.deleted", {"post_id": post_id}, aggregate_id=f"post:{post_id}")
            session.commit()
            deleted += 1
        session.commit()
    return deleted


def naive_reindex(sessions: sessionmaker[Session], post_ids: list[int]) -> int:
    """Per post: load it and its tags, build its document with one query, write it through the ORM."""
    with sessions() as session:
        for post_id in post_ids:
            post = session.get(Post, post_id)
            if post is None:
                continue
            tags = session.scalars(
                select(Hashtag.tag)
                .join(PostHashtag, PostHashtag.hashtag_id == Hashtag.id)
                .where(PostHashtag.post_id == post_id)
            ).all()
            config = config_for(post.language)
            document = session.scalar(
                text(
                    "SELECT setweight(to_tsvector(CAST(:c AS regconfig), :t), 'A') "
                    "|| setweight(to_tsvector(CAST(:c AS regconfig), :b), 'B')"
                ),
                {"c": config, "t": " ".join(tags), "b": post.body},
            )
            row = session.get(SearchDocument, post_id) or SearchDocument(post_id=post_id)
            row.config, row.document = config, document
            session.add(row)
        session.commit()
    return len(post_ids)


# --- search and incremental indexing ---------------------------------------------------


def search_queries(count: int, rng: random.Random) -> list[str]:
    """Single words (Zipf-like), phrases, hashtags and French words, with and without their accents."""
    queries = []
    for n in range(count):
        kind = n % 4
        if kind == 0:
            queries.append(WORDS[min(len(WORDS) - 1, int(len(WORDS) * rng.random() ** 2))])
        elif kind == 1:
            first = rng.randrange(len(WORDS) - 1)
            queries.append(f'"{WORDS[first]} {WORDS[first + 1]}"')
        elif kind == 2:
            queries.append("#" + rng.choice([*ACCENTED, *RISERS, f"tag{rng.randint(1, 200)}"]))
        else:
            queries.append(rng.choice(["cafe", "café", "ete", "été", "creme brulee", "deploiement", "reunion equipe"]))
    return queries


def measure_search(sessions: sessionmaker[Session], queries: list[str]) -> tuple[list[float], int]:
    latencies, empty = [], 0
    with sessions() as session:
        for query in queries:
            started = time.perf_counter()
            hits = search_posts(session, query)
            latencies.append(time.perf_counter() - started)
            empty += not hits
    return latencies, empty


def measure_incremental_indexing(running: Servers, engine: Engine, count: int, now: dt.datetime) -> float:
    """Posts/s from ``post.created`` published to every document written, by a real posts worker."""
    env = running.env()
    redis.Redis.from_url(
        CommonSettings(redis_url=running.redis_url, database_url=running.database_url).broker_url
    ).flushdb()
    log = open(ROOT / "var" / "bench-posts-worker.log", "ab")  # noqa: SIM115 - handed to the child
    worker = subprocess.Popen(
        [sys.executable, "-m", "nightshift.common.cli", "worker", "posts", "--health-port", "0"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    with engine.begin() as connection:
        first = int(connection.execute(text("SELECT max(id) FROM posts")).scalar_one()) + 1
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO posts (id, author_id, body, language, created_at) "
                    "SELECT g, 1 + g % 1000, 'fresh post number ' || g || ' about #café and #tag' || (g % 50), "
                    "'fr', :now FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) g"
                ),
                {"first": first, "last": first + count - 1, "now": now},
            )
        os.environ.update(REDIS_URL=running.redis_url, DATABASE_URL=running.database_url)
        broker = build_broker(CommonSettings(redis_url=running.redis_url, database_url=running.database_url))
        time.sleep(3)  # the worker's start-up is not what is measured
        started = time.perf_counter()
        for post_id in range(first, first + count):
            publish("post.created", {"post_id": post_id}, broker=broker)
        while True:
            with engine.connect() as connection:
                done = connection.execute(
                    text("SELECT count(*) FROM search_documents WHERE post_id >= :first"), {"first": first}
                ).scalar_one()
            if done >= count:
                break
            if worker.poll() is not None:
                raise RuntimeError("the posts worker stopped; see var/bench-posts-worker.log")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        broker.record_writer.close()
        broker.close()
        return count / seconds
    finally:
        stop_processes([worker], grace_s=10)
        log.close()
        with engine.begin() as connection:  # the generated data is left as it was (--keep-data reuses it)
            connection.execute(text("DELETE FROM posts WHERE id >= :first"), {"first": first})


# --- driver -------------------------------------------------------------------------------


def compare(name: str, runs: list[float], rows: int, naive_seconds: float, naive_rows: int, unit: str) -> str:
    fast = median(runs)
    naive_rate = naive_rows / naive_seconds if naive_seconds else float("inf")
    extrapolated = rows / naive_rate
    return (
        f"  {name}: {fmt(fast)} median of {len(runs)} ({', '.join(fmt(r) for r in runs)}) for {rows:,} {unit}; "
        f"naive loop {naive_rate:,.0f} {unit}/s on {naive_rows:,}, extrapolated {fmt(extrapolated)} "
        f"-> {extrapolated / fast:,.0f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--likes", type=int, default=10_000_000)
    parser.add_argument("--comments", type=int, default=2_000_000)
    parser.add_argument("--shares", type=int, default=500_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--hashtags", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive", type=int, default=3000, help="rows of each naive loop's sample")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--index-posts", type=int, default=3000, help="posts indexed through the actor")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the embedded database between runs; reuse data generated with the same sizes",
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, of {','.join(SECTIONS)}")
    options = parser.parse_args(argv)
    only = set(options.only.split(","))
    if only - set(SECTIONS):
        parser.error(f"--only: unknown sections {', '.join(sorted(only - set(SECTIONS)))}")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    scale = options.posts / 1_000_000
    sizes = Sizes(
        posts=options.posts,
        likes=options.likes if scale == 1 else int(options.likes * scale),
        comments=options.comments if scale == 1 else int(options.comments * scale),
        shares=options.shares if scale == 1 else int(options.shares * scale),
        users=options.users,
        hashtags=options.hashtags,
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rng = random.Random(7)
    (ROOT / "var").mkdir(exist_ok=True)

    with servers("posts_maintenance", keep=options.keep_data) as running:
        engine = make_engine(running.database_url, pool_size=4)
        sessions = make_session_factory(engine)
        print(header("Posts maintenance: set-based SQL vs naive per-row ORM loops"), flush=True)
        restore_cleanup(engine)  # a cleanup section interrupted in a kept database
        generated_at = generated_before(engine, sizes) if options.keep_data else None
        if generated_at is None:
            seconds, counts = timed(lambda: generate(engine, sizes, now))
            print(f"  generated in {fmt(seconds)}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()), flush=True)
            if options.keep_data:
                remember_generated(engine, sizes, now)
        else:
            now = generated_at
            with engine.connect() as connection:
                counts = {"posts": int(connection.execute(text("SELECT count(*) FROM posts")).scalar_one())}
            print(f"  reusing the data generated at {now:%Y-%m-%d %H:%M} UTC: {counts['posts']:,} posts", flush=True)
        posts_total = counts["posts"]

        def sample(query: str, **params: object) -> list[int]:
            with engine.connect() as connection:
                return [int(i) for i in connection.execute(text(query), {**params, "n": options.naive}).scalars()]

        results: list[str] = []

        if "reindex" in only:
            # Full reindex first: the other tasks do not need the index, search does.
            runs = [timed(lambda: reindex_search(sessions, batch_size=50_000))[0] for _ in range(options.runs)]
            ids = sample("SELECT id FROM posts ORDER BY random() LIMIT :n")
            naive_seconds, naive_rows = timed(lambda: naive_reindex(sessions, ids))
            results.append(
                compare("reindex_search (full rebuild + swap)", runs, posts_total, naive_seconds, naive_rows, "posts")
            )
            print(results[-1], flush=True)

        if "engagement" in only:
            # Engagement scores.
            as_of = now.date()
            runs = []
            for _ in range(options.runs):
                with engine.begin() as connection:
                    connection.execute(text("TRUNCATE post_engagement"))
                runs.append(timed(lambda: update_post_engagement_scores(sessions, as_of=as_of, timezone=TIMEZONE))[0])
            unchanged, outcome = timed(lambda: update_post_engagement_scores(sessions, as_of=as_of, timezone=TIMEZONE))
            ids = sample("SELECT id FROM posts ORDER BY random() LIMIT :n")
            naive_seconds, naive_rows = timed(lambda: naive_engagement(sessions, ids, as_of))
            results.append(
                compare(
                    "update_post_engagement_scores (from empty)", runs, posts_total, naive_seconds, naive_rows, "posts"
                )
            )
            results.append(f"    unchanged re-run: {fmt(unchanged)}, {outcome.rows_written} rows written")
            print("\n".join(results[-2:]), flush=True)

        if "trending" in only:
            # Trending for the last hour.
            hour = now.replace(minute=0, second=0) - dt.timedelta(hours=1)
            cache = redis.Redis.from_url(running.redis_url)
            runs = []
            ranking: list[TrendingEntry] = []
            for _ in range(options.runs):
                seconds, ranking = timed(lambda: update_trending_hashtags(sessions, cache, hour=hour))
                runs.append(seconds)
            window_end = hour + dt.timedelta(hours=1)
            with engine.connect() as connection:
                in_range = int(
                    connection.execute(
                        text("SELECT count(*) FROM posts WHERE created_at >= :s AND created_at < :e"),
                        {"s": window_end - dt.timedelta(days=7, hours=3), "e": window_end},
                    ).scalar_one()
                )
            ids = sample(
                "SELECT id FROM posts WHERE created_at >= :s AND created_at < :e ORDER BY random() LIMIT :n",
                s=window_end - dt.timedelta(days=7, hours=3),
                e=window_end,
            )
            naive_seconds, naive_rows = timed(lambda: naive_trending_posts(sessions, ids, window_end))
            results.append(
                compare("update_trending_hashtags (1 hour)", runs, in_range, naive_seconds, naive_rows, "posts")
            )
            results.append("    top 5: " + ", ".join(f"#{e.tag} {e.score:.1f}" for e in ranking[:5]))
            print("\n".join(results[-2:]), flush=True)

        if "analytics" in only:
            # Analytics for yesterday (local).
            day = previous_local_day(now, TIMEZONE)
            runs = [
                timed(lambda: generate_content_analytics(sessions, day=day, timezone=TIMEZONE))[0]
                for _ in range(options.runs)
            ]
            start, end = day_bounds(day, TIMEZONE)
            with engine.connect() as connection:
                day_posts = int(
                    connection.execute(
                        text("SELECT count(*) FROM posts WHERE created_at >= :s AND created_at < :e"),
                        {"s": start, "e": end},
                    ).scalar_one()
                )
            ids = sample("SELECT id FROM posts WHERE created_at >= :s AND created_at < :e LIMIT :n", s=start, e=end)
            naive_seconds, naive_rows = timed(lambda: naive_analytics(sessions, ids))
            results.append(
                compare("generate_content_analytics (1 day)", runs, day_posts, naive_seconds, naive_rows, "posts")
            )
            print(results[-1], flush=True)

        if "cleanup" in only:
            # Cleanup: the deleted posts (and what cascades from them) restored between runs.
            cutoff = now - RETENTION
            with engine.begin() as connection:
                for table in CLEANED:
                    key = "id" if table == "posts" else "post_id"
                    connection.execute(text(f"DROP TABLE IF EXISTS bench_kept_{table}"))
                    connection.execute(
                        text(
                            f"CREATE UNLOGGED TABLE bench_kept_{table} AS SELECT t.* FROM {table} t "
                            f"JOIN posts p ON p.id = t.{key} WHERE p.created_at < :cutoff "
                            "AND NOT EXISTS (SELECT 1 FROM post_likes l WHERE l.post_id = p.id) "
                            "AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.post_id = p.id) "
                            "AND NOT EXISTS (SELECT 1 FROM shares s WHERE s.post_id = p.id)"
                        ),
                        {"cutoff": cutoff},
                    )
            runs, deleted = [], 0
            for run in range(options.runs):
                if run:
                    restore_cleanup(engine, drop=False)
                seconds, cleaned = timed(lambda: cleanup_old_posts(sessions, retention=RETENTION, now=now))
                runs.append(seconds)
                deleted = cleaned.deleted
            restore_cleanup(engine, drop=False)
            # The naive loop goes through the old posts and checks each, as the task has to: most
            # of them (about 13 in 14 here) have engagement and are kept. A random sample, in id order.
            with engine.connect() as connection:
                old_posts = int(
                    connection.execute(
                        text("SELECT count(*) FROM posts WHERE created_at < :cutoff"), {"cutoff": cutoff}
                    ).scalar_one()
                )
            ids = sorted(
                sample("SELECT id FROM posts WHERE created_at < :cutoff ORDER BY random() LIMIT :n", cutoff=cutoff)
            )
            naive_seconds, naive_deleted = timed(lambda: naive_cleanup(sessions, ids))
            results.append(
                compare("cleanup_old_posts", runs, old_posts, naive_seconds, len(ids), "old posts examined")
                + f"; {deleted:,} deleted (naive: {naive_deleted:,} of its sample)"
            )
            print(results[-1], flush=True)
            restore_cleanup(engine, drop=False)
            # The former baseline, for comparison: the loop over posts known to be eligible only.
            ids = sample("SELECT id FROM bench_kept_posts ORDER BY id LIMIT :n")
            naive_seconds, naive_rows = timed(lambda: naive_cleanup(sessions, ids))
            results.append(
                compare(
                    "    (naive given only eligible posts)", runs, deleted, naive_seconds, naive_rows, "posts deleted"
                )
            )
            print(results[-1], flush=True)
            restore_cleanup(engine)

        if "search" in only:
            # Search latency, on a freshly built index (``--only search`` reuses a kept database's index).
            with engine.connect() as connection:
                documents = int(connection.execute(text("SELECT count(*) FROM search_documents")).scalar_one())
            if "reindex" in only or not options.keep_data or documents < posts_total:
                reindex_search(sessions, batch_size=50_000)
            vacuum(engine, "search_documents")
            queries = search_queries(options.queries, rng)
            measure_search(sessions, queries[:50])  # warm the cache
            latencies, empty = measure_search(sessions, queries)
            results.append(
                f"  search, {len(queries)} queries on {posts_total:,} posts: p50 {fmt(percentile(latencies, 0.5))}, "
                f"p99 {fmt(percentile(latencies, 0.99))}, max {fmt(max(latencies))} ({empty} without a match)"
            )
            print(results[-1], flush=True)

        if "indexing" in only:
            # Incremental indexing through the actor.
            rate = measure_incremental_indexing(running, engine, options.index_posts, now)
            results.append(
                f"  incremental indexing, {options.index_posts} posts: {rate:,.0f} posts/s "
                "(post.created published -> document written, one posts worker process, 8 threads)"
            )
            print(results[-1], flush=True)

        print("\nSummary")
        print("\n".join(results))
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
