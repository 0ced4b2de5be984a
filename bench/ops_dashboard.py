"""The ops dashboard's JSON endpoints on a large history: p50/p99 per page.

Fills, set-based (``INSERT … SELECT … FROM generate_series``, secondary indexes
built after the load), ``--jobs`` job records (default 10,000,000) and
``--audit`` task-audit rows (default 30,000,000) spread over the last 30 days,
plus a dozen schedules and a few hundred ready and delayed messages in Redis; then times
``--requests`` requests (after warm-ups) of each page's JSON endpoint through
the real application (FastAPI, a bearer token, PostgreSQL and Redis), and
prints p50 and p99 per endpoint. The target is p99 ≤ 300 ms per page.

Before the requests it builds the actors' per-minute rollup of the loaded audit
with the worker's own function (``actor_rollup.roll_up``, timed), then adds two
minutes of traffic after it (the tail the Actors page reads raw) and times one
incremental run. It also compares, interleaved, the 24-hour actors table read from
the rollup with the exact query it replaced (``percentile_cont`` over the raw rows).

Run it with ``python -m bench.ops_dashboard`` (``--jobs 200000 --audit 600000``
for a quick run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable

import dramatiq
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from bench._common import header, median, percentile, servers
from nightshift.common.broker import build_broker
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.settings import CommonSettings
from nightshift.ops import actor_rollup, stats
from nightshift.ops.accounts import create_token
from nightshift.ops.app import create_app
from nightshift.ops.context import OpsContext
from nightshift.ops.settings import OpsSettings

#: Actors and queues the generated history is spread over.
ACTORS = [f"bench_actor_{i}" for i in range(12)]
QUEUE = "bench_high"

#: Rows per INSERT statement while loading (progress is printed after each).
CHUNK = 2_000_000

#: The secondary indexes, dropped for the load and built after it (as a bulk load would).
INDEXES = {
    "ix_job_records_status_updated": "job_records (status, updated_at)",
    "ix_job_records_actor_updated": "job_records (actor, updated_at)",
    "ix_job_records_updated": "job_records (updated_at)",
    "ix_job_records_queue_updated": "job_records (queue, updated_at)",
    "ix_job_records_trace_id": "job_records (trace_id) WHERE trace_id IS NOT NULL",
    "ix_task_audit_message_id": "task_audit (message_id)",
    "ix_task_audit_started_at": "task_audit (started_at)",
    "ix_task_audit_actor_started": "task_audit (actor, started_at)",
}

_JOBS = """
INSERT INTO job_records (message_id, actor, queue, status, attempts, args, trigger, enqueued_at,
                         started_at, finished_at, updated_at, last_error, trace_id)
SELECT md5('job' || i)::uuid,
       'bench_actor_' || (i % 12),
       :queue,
       (ARRAY['done','done','done','done','done','done','done','retrying','dead','queued'])[1 + i % 10],
       1 + (i % 10 = 8)::int * 3,
       jsonb_build_object('item_id', i),
       CASE WHEN i % 5 = 0 THEN 'schedule:bench' ELSE 'event:bench.happened' END,
       t, t + interval '10 ms', t + interval '60 ms', t + interval '60 ms',
       CASE WHEN i % 10 = 8 THEN 'RuntimeError: generated failure' END,
       CASE WHEN i % 3 = 0 THEN md5('trace' || i) END
FROM generate_series(:first, :last) AS i,
     LATERAL (SELECT now() - (i * 2592.0 / :total) * interval '1 second' * 1000 AS t) AS at
"""

_AUDIT = """
INSERT INTO task_audit (message_id, actor, queue, trigger, attempt, outcome, started_at, finished_at,
                        duration_ms, error)
SELECT md5('job' || (i / 3))::uuid,
       'bench_actor_' || ((i / 3) % 12),
       :queue, 'event:bench.happened', 1 + i % 3,
       CASE WHEN i % 17 = 0 THEN 'retrying' WHEN i % 97 = 0 THEN 'dead' ELSE 'done' END,
       t, t + interval '50 ms',
       5 + (i % 1000) * 0.25 + (i % 7) * 3,
       CASE WHEN i % 17 = 0 THEN 'RuntimeError: generated failure' END
FROM generate_series(:first, :last) AS i,
     LATERAL (SELECT now() - (i * 2592.0 / :total) * interval '1 second' * 1000 AS t) AS at
"""


def fill(engine: Engine, jobs: int, audit: int) -> None:
    """Load the history in chunks, then build the indexes and analyse."""
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE job_records, task_audit"))
        for name in INDEXES:
            connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for statement, total, label in ((_JOBS, jobs, "job records"), (_AUDIT, audit, "audit rows")):
        for first in range(1, total + 1, CHUNK):
            last = min(first + CHUNK - 1, total)
            with engine.begin() as connection:
                connection.execute(text("SET LOCAL synchronous_commit = off"))
                connection.execute(text(statement), {"first": first, "last": last, "total": total, "queue": QUEUE})
            print(f"  {label}: {last:,} of {total:,} ({time.perf_counter() - started:.0f} s)", flush=True)
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        for name, definition in INDEXES.items():
            table, _, rest = definition.partition(" ")
            connection.execute(text(f"CREATE INDEX {name} ON {table} {rest}"))
            print(f"  index {name} ({time.perf_counter() - started:.0f} s)", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE job_records"))
        connection.execute(text("VACUUM ANALYZE task_audit"))
    print(f"  loaded and analysed in {time.perf_counter() - started:.0f} s", flush=True)


#: The exact per-actor query the rollup replaced, the A/B baseline.
_EXACT_PER_ACTOR = text(
    """
    SELECT actor, count(*), count(*) FILTER (WHERE outcome IN ('done', 'skipped')),
           count(*) FILTER (WHERE outcome IN ('retrying', 'dead')),
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)
    FROM task_audit WHERE started_at >= now() - make_interval(mins => :minutes)
    GROUP BY actor ORDER BY actor
    """
)

#: A minute of the generated traffic at the loaded rate (about a million attempts a day).
_TRAFFIC = """
INSERT INTO task_audit (message_id, actor, queue, trigger, attempt, outcome, started_at, finished_at, duration_ms)
SELECT gen_random_uuid(), 'bench_actor_' || (i % 12), :queue, 'event:bench.happened', 1,
       CASE WHEN i % 17 = 0 THEN 'retrying' ELSE 'done' END,
       now() - (i % 60) * interval '1 second', now(), 5 + (i % 1000) * 0.25
FROM generate_series(1, :count) AS i
"""


def build_rollup(engine: Engine, batch_size: int) -> None:
    """Roll the loaded audit up as the worker would after a long downtime, then a minute's traffic."""
    sessions = make_session_factory(engine)
    began = time.perf_counter()
    result = actor_rollup.roll_up(sessions, batch_size=batch_size)
    took = time.perf_counter() - began
    print(
        f"  rollup of the history: {result['rows']:,} rows, {result['minutes']:,} minutes re-rolled in"
        f" {result['batches']} batches of {batch_size:,}: {took:.0f} s ({result['rows'] / took:,.0f} rows/s)",
        flush=True,
    )
    with engine.begin() as connection:
        connection.execute(text(_TRAFFIC), {"queue": QUEUE, "count": 700})
    began = time.perf_counter()
    result = actor_rollup.roll_up(sessions, batch_size=50_000)
    print(
        f"  incremental run after a minute's traffic: {result['rows']:,} rows (with the rescan),"
        f" {result['minutes']} minutes, {(time.perf_counter() - began) * 1000:.0f} ms",
        flush=True,
    )
    with engine.begin() as connection:
        connection.execute(text(_TRAFFIC), {"queue": QUEUE, "count": 1400})  # the tail readers add raw


def compare_actor_tables(engine: Engine, pairs: int) -> None:
    """The 24 h actors table: exact over raw rows (A) and rollup plus tail (B), interleaved."""
    sessions = make_session_factory(engine)
    exact: list[float] = []
    rolled: list[float] = []
    for _ in range(pairs):
        with sessions() as session:
            began = time.perf_counter()
            session.execute(_EXACT_PER_ACTOR, {"minutes": 1440}).all()
            exact.append((time.perf_counter() - began) * 1000)
        with sessions() as session:
            began = time.perf_counter()
            stats.per_actor(session, minutes=1440)
            rolled.append((time.perf_counter() - began) * 1000)
    print(
        f"\n24 h actors table, {pairs} interleaved pairs: exact {median(exact):.1f} ms,"
        f" rollup + tail {median(rolled):.1f} ms (medians), ratio {median(exact) / median(rolled):.1f}x",
        flush=True,
    )


def seed_redis_and_schedules(engine: Engine, broker: dramatiq.Broker) -> None:
    """Three hundred ready and delayed messages, and a dozen schedules."""
    for index in range(300):
        message: dramatiq.Message[object] = dramatiq.Message(
            queue_name=QUEUE, actor_name="bench_actor_1", args=(), kwargs={"i": index}, options={}
        )
        broker.enqueue(message, delay=60_000 if index % 3 == 0 else None)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE schedules, schedule_events"))
        connection.execute(
            text(
                "INSERT INTO schedules (name, actor, queue, cron, timezone, misfire, grace_s, catch_up_window_s,"
                " overlap, handled_through) SELECT 'bench_' || i, 'bench_actor_1', :queue, '*/5 * * * *', 'UTC',"
                " 'skip', 600, 3600, 'allow', now() FROM generate_series(1, 12) AS i"
            ),
            {"queue": QUEUE},
        )


def measure(call: Callable[[], object], requests: int) -> list[float]:
    for _ in range(3):
        call()
    timings = []
    for _ in range(requests):
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000_000)
    parser.add_argument("--audit", type=int, default=30_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rollup-batch", type=int, default=500_000, help="audit rows per rollup batch")
    parser.add_argument("--pairs", type=int, default=7, help="interleaved exact/rollup pairs")
    args = parser.parse_args()
    print(header(f"ops dashboard: {args.jobs:,} job records, {args.audit:,} audit rows"))
    with servers("ops_dashboard") as found:
        settings = CommonSettings(redis_url=found.redis_url, database_url=found.database_url, environment="test")
        engine = make_engine(found.database_url, pool_size=4)
        broker = build_broker(settings, set_global=False)
        redis.Redis.from_url(settings.broker_url).flushdb()
        fill(engine, args.jobs, args.audit)
        seed_redis_and_schedules(engine, broker)
        build_rollup(engine, args.rollup_batch)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE task_audit"))
            connection.execute(text("VACUUM ANALYZE ops_actor_minutes"))
        compare_actor_tables(engine, args.pairs)
        sessions = make_session_factory(engine)
        ctx = OpsContext.build(
            settings, OpsSettings(extra_queues=QUEUE), sessions, broker, redis.Redis.from_url(settings.redis_url)
        )
        token = create_token(sessions, "bench", ["read"], by="bench")
        with engine.connect() as connection:
            some_job = connection.execute(
                text("SELECT message_id FROM job_records WHERE status = 'dead' LIMIT 1")
            ).scalar()
            some_trace = connection.execute(
                text("SELECT trace_id FROM job_records WHERE trace_id IS NOT NULL LIMIT 1")
            ).scalar()
        two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        endpoints = {
            "overview": "/api/overview",
            "queues": "/api/queues",
            "queue": f"/api/queues/{QUEUE}",
            "workers": "/api/workers",
            "jobs (newest)": "/api/jobs",
            "jobs ?status=dead": "/api/jobs?status=dead",
            "jobs ?actor=": "/api/jobs?actor=bench_actor_3",
            "jobs ?queue=&since=": f"/api/jobs?queue={QUEUE}&since={two_days_ago:%Y-%m-%dT%H:%M:%SZ}",
            "jobs ?trace_id=": f"/api/jobs?trace_id={some_trace}",
            "jobs ?id=": f"/api/jobs?id={some_job}",
            "job page": f"/api/jobs/{some_job}",
            "dead letters": "/api/dead-letters",
            "dead letters of a queue": f"/api/dead-letters/{QUEUE}",
            "schedules": "/api/schedules",
            "actors (1 h)": "/api/actors?window=60",
            "actors (24 h)": "/api/actors?window=1440",
            "actor page (1 h)": "/api/actors/bench_actor_3?window=60",
            "audit": "/api/audit",
        }
        headers = {"Authorization": f"Bearer {token}"}
        print(f"\n{'endpoint':<28}{'p50 ms':>10}{'p99 ms':>10}   {args.requests} requests each")
        with TestClient(create_app(ctx)) as client:
            for label, path in endpoints.items():

                def call(path: str = path) -> object:
                    response = client.get(path, headers=headers)
                    response.raise_for_status()
                    return response

                timings = measure(call, args.requests)
                print(f"{label:<28}{median(timings):>10.1f}{percentile(timings, 0.99):>10.1f}", flush=True)
        broker.close()
        engine.dispose()


if __name__ == "__main__":
    main()
