"""Screenshots of the ops dashboard's main pages, taken with Chromium into ``docs/img/``.

Starts embedded Redis and PostgreSQL (see ``bench._common.servers``), declares
the installed schedules, loads an hour of generated history (set-based, so the
charts have something to show), runs a real worker on three demo actors (one
slow, one that fails and dies), serves the dashboard with uvicorn and drives
Debian's Chromium with Playwright through the pages, signed in as an operator.

Run it with ``python -m bench.screenshots`` (it needs ``/usr/bin/chromium``).
"""

from __future__ import annotations

import datetime as dt
import random
import time

import dramatiq
import redis
from sqlalchemy import text

from bench._common import ROOT, servers
from nightshift.common.broker import build_broker
from nightshift.common.db.engine import make_engine, make_session_factory, transaction
from nightshift.common.schedules import installed_schedules
from nightshift.common.settings import CommonSettings
from nightshift.common.storage import Storage, storage_from_settings
from nightshift.ops import alert_lifecycle, maintenance, reports
from nightshift.ops.accounts import create_operator
from nightshift.ops.alert_rules import Condition
from nightshift.ops.app import create_app
from nightshift.ops.context import OpsContext
from nightshift.ops.settings import OpsSettings
from nightshift.scheduler import store
from tests.support.ops import served

#: Where the screenshots go.
OUT = ROOT / "docs" / "img"

#: The demo queue.
QUEUE = "demo_high"

#: The pages, as (file name, path).
PAGES = (
    ("ops-overview", "/"),
    ("ops-queues", "/queues"),
    ("ops-workers", "/workers"),
    ("ops-jobs", "/jobs"),
    ("ops-dead-letters", f"/dead-letters/{QUEUE}"),
    ("ops-schedules", "/schedules"),
    ("ops-actors", "/actors"),
    ("ops-alerts", "/alerts"),
    ("ops-maintenance", "/maintenance"),
    ("ops-audit", "/audit"),
)

#: Last week's work, for the weekly report: per day and actor, attempts with some failures.
_LAST_WEEK = """
INSERT INTO task_audit (message_id, actor, queue, trigger, attempt, outcome, started_at, finished_at, duration_ms)
SELECT gen_random_uuid(), a.actor, a.queue, 'event:demo', 1,
       CASE WHEN random() < a.failing THEN 'retrying' ELSE 'done' END,
       t, t + interval '40 ms', a.ms * (1 + 0.15 * d + random())
FROM generate_series(0, 6) AS d,
     (VALUES ('resize_image', 'media_high', 0.01, 30), ('send_digest', 'notifications_high', 0.04, 90),
             ('index_post', 'posts_high', 0.002, 12), ('charge_card', 'demo_high', 0.12, 250))
       AS a(actor, queue, failing, ms),
     generate_series(1, 300 + 40 * d) AS i,
     LATERAL (SELECT :start + d * interval '1 day' + (i::float / (300 + 40 * d)) * interval '1 day' AS t) AS at
"""

_HISTORY = """
INSERT INTO task_audit (message_id, actor, queue, trigger, attempt, outcome, started_at, finished_at,
                        duration_ms, error)
SELECT gen_random_uuid(), (ARRAY['resize_image', 'send_digest', 'index_post', 'charge_card'])[1 + i % 4], :queue,
       'event:demo', 1, CASE WHEN random() < 0.03 + 0.05 * (i % 600 < 40)::int THEN 'retrying' ELSE 'done' END,
       t, t + interval '40 ms', 8 + random() * 60 + (i % 4) * 25, NULL
FROM generate_series(1, :rows) AS i,
     LATERAL (SELECT now() - interval '60 minutes' * (i::float / :rows)
                     * (0.9 + 0.1 * sin(i / 500.0)) AS t) AS at
"""


def declare_actors() -> None:
    @dramatiq.actor(queue_name=QUEUE, actor_name="resize_image", max_retries=0)
    def resize_image(image_id: int) -> None:
        time.sleep(random.uniform(0.01, 0.05))

    @dramatiq.actor(queue_name=QUEUE, actor_name="send_digest", max_retries=0)
    def send_digest(user_id: int) -> None:
        time.sleep(60)  # still running when the workers page is taken

    @dramatiq.actor(queue_name=QUEUE, actor_name="charge_card", max_retries=1)
    def charge_card(order_id: int) -> None:
        raise ConnectionError(f"payment provider timed out for order {order_id}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with servers("screenshots") as found:
        settings = CommonSettings(
            redis_url=found.redis_url, database_url=found.database_url, environment="test", retry_delays_ms=(200,)
        )
        redis.Redis.from_url(settings.broker_url).flushdb()
        engine = make_engine(found.database_url)
        sessions = make_session_factory(engine)
        broker = build_broker(settings)
        declare_actors()
        with transaction(sessions) as session:
            store.sync_declared(
                session, installed_schedules(), default_timezone="Europe/Paris", now=dt.datetime.now(dt.UTC)
            )
        with engine.begin() as connection:
            connection.execute(text(_HISTORY), {"rows": 40_000, "queue": QUEUE})
        worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=2)
        worker.start()
        for index in range(40):
            broker.get_actor("resize_image").send(image_id=index)
        broker.get_actor("send_digest").send(user_id=7)
        for order in (1041, 1042):
            broker.get_actor("charge_card").send(order_id=order)
        for index in range(25):
            broker.get_actor("resize_image").send_with_options(kwargs={"image_id": 100 + index}, delay=600_000)
        time.sleep(4)
        create_operator(sessions, "ada", "operator", "screenshots only 1")
        ctx = OpsContext.build(
            settings, OpsSettings(extra_queues=QUEUE), sessions, broker, redis.Redis.from_url(settings.redis_url)
        )
        report_id = _alerts_and_report(ctx, engine, settings)
        with served(create_app(ctx)) as base_url, sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-background-networking"],
            )
            page = chromium.new_page(base_url=base_url, viewport={"width": 1280, "height": 860})
            page.goto("/login")
            page.fill("input[name=name]", "ada")
            page.fill("input[name=password]", "screenshots only 1")
            page.click("button[type=submit]")
            page.wait_for_selector("#live.on")
            for name, path in PAGES:
                page.goto(path)
                if path == "/":
                    page.wait_for_selector("#live.on")
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                print(f"docs/img/{name}.png")
            page.goto(f"/reports/{report_id}")
            page.screenshot(path=str(OUT / "ops-report.png"), full_page=True)
            print("docs/img/ops-report.png")
            page.goto("/jobs?actor=charge_card")
            page.locator("table tbody tr a").first.click()
            page.screenshot(path=str(OUT / "ops-job.png"), full_page=True)
            print("docs/img/ops-job.png")
            chromium.close()
        worker.stop(timeout=1000)
        broker.close()
        engine.dispose()


def _alerts_and_report(ctx: OpsContext, engine: object, settings: CommonSettings) -> int:
    """Alerts as the evaluator leaves them, a silence, cache statistics, checks, and last week's report."""
    now = dt.datetime.now(dt.UTC)
    earlier = now - dt.timedelta(hours=5)
    resolved = [
        Condition(
            "dead_letters:demo_high",
            "dead_letters",
            "warning",
            "Queue demo_high: 12 jobs went to the dead letters in 15 min",
            {"queue": "demo_high", "dead": 12, "threshold": 10, "window_s": 900},
        ),
        Condition(
            "perf_drift:send_digest",
            "perf_drift",
            "warning",
            "Actor send_digest: p95 412 ms over the last hour, 2.6x the same hour last week (158 ms)",
            {"actor": "send_digest", "ratio": 2.61},
        ),
    ]
    alert_lifecycle.apply(ctx.sessions, resolved, rules=["dead_letters", "perf_drift"], now=earlier)
    alert_lifecycle.apply(
        ctx.sessions, [], rules=["dead_letters", "perf_drift"], now=earlier + dt.timedelta(minutes=25)
    )
    active = [
        Condition(
            "backlog:demo_high",
            "backlog",
            "warning",
            "Queue demo_high has a backlog of 1840 (threshold 1000)",
            {"queue": "demo_high", "backlog": 1840, "ready": 1790, "threshold": 1000},
        ),
        Condition(
            "failure_rate:charge_card",
            "failure_rate",
            "warning",
            "Actor charge_card fails 38% of its attempts (baseline 4%)",
            {"actor": "charge_card", "attempts": 120, "failed": 46, "failure_rate": 0.3833},
        ),
        Condition(
            "stuck_job:5b0c7c1e-1f0a-4a51-9d0e-3f7f0d7c2a10",
            "stuck_job",
            "warning",
            "Job 5b0c7c1e-1f0a-4a51-9d0e-3f7f0d7c2a10 (send_digest) has run for 612 s, its p95 is 0.2 s",
            {"actor": "send_digest", "running_s": 612.0, "p95_s": 0.2},
        ),
    ]
    alert_lifecycle.apply(ctx.sessions, active, rules=["backlog", "failure_rate", "stuck_job"], now=now)
    alert_lifecycle.silence(
        ctx.sessions, "stuck_job:", until=now + dt.timedelta(hours=2), reason="digest provider migration", by="ada"
    )
    cache = redis.Redis.from_url(settings.redis_url)
    maintenance.collect_cache_stats(ctx.sessions, cache, ctx.options)
    for number in range(300):
        cache.set(f"feed:{number}:page:1", "x", ex=86_400)
        cache.set(f"trending:hourly:{number}", "x", ex=7200)
        if number % 3 == 0:
            cache.set(f"profile:{number}", "x")
        cache.get(f"feed:{number}:page:1")
        cache.get(f"feed:{number}:page:2")
    maintenance.collect_cache_stats(ctx.sessions, cache, ctx.options)
    maintenance.check_dependencies(
        ctx.sessions, ctx.broker, ctx.broker.client, cache, runtime_storage(settings), settings, ctx.options
    )
    start, _ = reports.period_bounds("weekly", now, "Europe/Paris")
    with engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(text(_LAST_WEEK), {"start": start})
    report_id, _ = reports.build_report(ctx.sessions, "weekly", now=now, timezone="Europe/Paris")
    return report_id


def runtime_storage(settings: CommonSettings) -> Storage:
    return storage_from_settings(settings)


if __name__ == "__main__":
    main()
