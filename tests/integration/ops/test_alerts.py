"""Each alert rule, driven with real Redis, PostgreSQL and workers: one alert, one email and one signed
webhook when it fires, nothing more while it holds, one of each when it resolves; a silenced alert
delivers nothing.

Every test sets the thresholds (``OPS_ALERT_*``) so that only the rule under test can fire, and
evaluates with :func:`nightshift.ops.evaluator.evaluate`, the function the evaluator thread calls
every 30 s. Emails go through the notifications worker to the outbox folder; webhooks to a local
receiver that refuses a bad signature.
"""

from __future__ import annotations

import datetime as dt
import email
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email import policy
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Message
from sqlalchemy import Engine, select, text

import nightshift.notifications.actors
import nightshift.ops.actors  # noqa: F401 - deliver_alert_notice, record_raised_alert
from nightshift.common import runtime, schedule_control
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import ScheduleRow
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.purge import purge_queue
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.revocation import revoke
from nightshift.common.settings import CommonSettings
from nightshift.common.workers import live_workers
from nightshift.ops import alert_lifecycle, maintenance
from nightshift.ops.context import OpsContext
from nightshift.ops.evaluator import evaluate
from nightshift.ops.models import Alert, AlertNotice
from tests.support.ops import ops_context
from tests.support.ops_actors import QUEUE, ops_flaky, ops_long
from tests.support.ops_schedules import HEARTBEAT
from tests.support.processes import service_process
from tests.support.scheduler_processes import scheduler_processes
from tests.support.webhook_receiver import Received, webhook_receiver

SECRET = "a-webhook-secret-for-tests"
#: A known queue no worker consumes.
IDLE = "opstest_idle"
#: Thresholds that keep every rule quiet; each test lowers the one it drives.
QUIET = {
    "OPS_ALERT_BACKLOG_MAX": "100000",
    "OPS_ALERT_OLDEST_AGE_MAX_S": "100000",
    "OPS_ALERT_NO_CONSUMER_MIN_BACKLOG": "100000",
    "OPS_ALERT_WORKER_LOST_AFTER_S": "100000",
    "OPS_ALERT_STUCK_MIN_S": "100000",
    "OPS_ALERT_FAILURE_MIN_ATTEMPTS": "100000",
    "OPS_ALERT_DRIFT_MIN_SAMPLES": "100000",
    "OPS_ALERT_DEAD_LETTERS_MAX": "100000",
    "OPS_ALERT_SCHEDULE_GRACE_S": "100000",
}


@dataclass
class Alerting:
    ctx: OpsContext
    received: Received
    outbox: Path
    engine: Engine

    def emails(self) -> list[str]:
        return sorted(
            str(email.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"])
            for path in self.outbox.glob("*.eml")
        )

    def alerts(self) -> list[Alert]:
        with self.ctx.sessions() as session:
            return list(session.scalars(select(Alert).order_by(Alert.id)))

    def settle(self, *, fired: int, resolved: int) -> None:
        """Wait until exactly that many firing and resolved notices arrived by webhook and by email."""

        def arrived() -> bool:
            hooks = (len(self.received.of("firing")), len(self.received.of("resolved")))
            mails = self.emails()
            resolved_mails = sum(1 for subject in mails if "Resolved:" in subject)
            return hooks == (fired, resolved) and (len(mails) - resolved_mails, resolved_mails) == (fired, resolved)

        def recorded() -> bool:  # each delivery is marked on the notice once the receiver has answered
            with self.ctx.sessions() as session:
                pending = session.scalar(
                    select(text("count(*)"))
                    .select_from(AlertNotice)
                    .where((AlertNotice.webhook_sent_at.is_(None)) | (AlertNotice.email_sent_at.is_(None)))
                )
            return bool(pending == 0)

        wait_for(arrived, timeout=30, what=f"{fired} firing and {resolved} resolved notices by webhook and email")
        wait_for(recorded, timeout=30, what="every notice marked delivered")
        assert arrived(), "nothing more once every notice is delivered"
        assert self.received.refused == 0


def _setup(monkeypatch: pytest.MonkeyPatch, **thresholds: str) -> None:
    for name, value in {**QUIET, **thresholds}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def alerting(
    env: CommonSettings,
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    monkeypatch: pytest.MonkeyPatch,
    run_worker: Any,
) -> Iterator[Any]:
    """Call with the thresholds of the test; starts the receiver, the context and the workers."""
    with webhook_receiver(SECRET) as (url, received):

        def start(**thresholds: str) -> Alerting:
            _setup(monkeypatch, **thresholds)
            monkeypatch.setenv("OPS_ALERT_WEBHOOK_URL", url)
            monkeypatch.setenv("OPS_ALERT_WEBHOOK_SECRET", SECRET)
            runtime.reset()
            ctx = ops_context(env, broker, clean_db)
            ctx = replace(ctx, pools={**ctx.pools, IDLE: (IDLE,)})
            broker.declare_queue(IDLE)
            run_worker({"ops_normal", "notifications_critical", QUEUE}, threads=4)
            return Alerting(ctx, received, Path(env.outbox_dir), clean_db)

        yield start


def _idle_message(age_s: float = 0) -> Message[Any]:
    stamp = int((dt.datetime.now(dt.UTC).timestamp() - age_s) * 1000)
    return Message(
        queue_name=IDLE,
        actor_name="ops_touch",
        args=(),
        kwargs={"path": "/nowhere"},
        options={},
        message_timestamp=stamp,
    )


def _only(alerting: Alerting, rule: str) -> Alert:
    [alert] = alerting.alerts()
    assert alert.rule == rule
    return alert


def test_a_backlog_fires_once_stays_active_and_resolves(alerting: Any, broker: NightshiftRedisBroker) -> None:
    run = alerting(OPS_ALERT_BACKLOG_MAX="5")
    for _ in range(8):
        broker.enqueue(_idle_message())

    evaluate(run.ctx)
    run.settle(fired=1, resolved=0)
    alert = _only(run, "backlog")
    assert (alert.key, alert.facts["backlog"], alert.facts["threshold"]) == (f"backlog:{IDLE}", 8, 5)
    [hook] = run.received.of("firing")
    assert hook["alert"]["facts"]["backlog"] == 8
    assert hook["dashboard_url"] == f"http://127.0.0.1:8120/alerts/{alert.id}"
    [subject] = run.emails()
    assert f"Queue {IDLE} has a backlog of 8 (threshold 5)" in subject

    evaluate(run.ctx)  # still holding: nothing new
    evaluate(run.ctx)
    run.settle(fired=1, resolved=0)
    assert len(run.alerts()) == 1

    purge_queue(broker, IDLE)
    evaluate(run.ctx)
    run.settle(fired=1, resolved=1)
    [alert] = run.alerts()
    assert alert.resolved_at is not None
    evaluate(run.ctx)
    run.settle(fired=1, resolved=1)


def test_old_messages_and_a_queue_nobody_consumes(alerting: Any, broker: NightshiftRedisBroker) -> None:
    run = alerting(OPS_ALERT_OLDEST_AGE_MAX_S="60")
    broker.enqueue(_idle_message(age_s=3600))
    evaluate(run.ctx)
    run.settle(fired=1, resolved=0)
    assert _only(run, "oldest_message").facts["oldest_age_s"] >= 3600
    purge_queue(broker, IDLE)
    evaluate(run.ctx)
    run.settle(fired=1, resolved=1)


def test_a_queue_with_work_and_no_consumer(alerting: Any, broker: NightshiftRedisBroker) -> None:
    run = alerting(OPS_ALERT_NO_CONSUMER_MIN_BACKLOG="1")
    broker.enqueue(_idle_message())
    evaluate(run.ctx)
    run.settle(fired=1, resolved=0)
    assert _only(run, "no_consumer").severity == "critical"
    purge_queue(broker, IDLE)
    evaluate(run.ctx)
    run.settle(fired=1, resolved=1)


def test_a_slow_job_is_stuck_against_its_actors_p95(
    alerting: Any, broker: NightshiftRedisBroker, clean_db: Engine, tmp_path: Path
) -> None:
    run = alerting(OPS_ALERT_STUCK_MIN_S="1", OPS_ALERT_STUCK_MIN_SAMPLES="20")
    now = dt.datetime.now(dt.UTC)
    with clean_db.begin() as connection:  # its usual runs: 20 of 100 ms
        connection.execute(
            text(
                "INSERT INTO task_audit (message_id, actor, queue, attempt, outcome, started_at, finished_at,"
                " duration_ms) SELECT gen_random_uuid(), 'ops_long', :queue, 1, 'done', :at, :at, 100"
                " FROM generate_series(1, 20)"
            ),
            {"queue": QUEUE, "at": now - dt.timedelta(hours=1)},
        )
    message = ops_long.send(str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists(), what="the slow job to start")

    def stuck() -> bool:
        evaluate(run.ctx)
        return bool(run.alerts())

    wait_for(stuck, timeout=20, what="the stuck job alert")
    run.settle(fired=1, resolved=0)
    alert = _only(run, "stuck_job")
    assert (alert.facts["job_id"], alert.facts["actor"]) == (message.message_id, "ops_long")

    revoke(broker, message.message_id, terminate=True)

    def resolved() -> bool:
        evaluate(run.ctx)
        return run.alerts()[0].resolved_at is not None

    wait_for(resolved, timeout=20, what="the stuck job alert to resolve")
    run.settle(fired=1, resolved=1)


def test_an_actor_that_starts_failing(alerting: Any, broker: NightshiftRedisBroker, tmp_path: Path) -> None:
    run = alerting(OPS_ALERT_FAILURE_MIN_ATTEMPTS="12")
    for number in range(5):
        ops_flaky.send(str(tmp_path / f"missing-{number}"))  # three attempts each, all failing

    def dead() -> int:
        broker.record_writer.flush()
        with run.ctx.sessions() as session:
            return int(session.scalar(text("SELECT count(*) FROM job_records WHERE status = 'dead'")) or 0)

    wait_for(lambda: dead() == 5, timeout=30, what="the failing jobs to die")
    evaluate(run.ctx)
    run.settle(fired=1, resolved=0)
    alert = _only(run, "failure_rate")
    assert (alert.facts["actor"], alert.facts["attempts"], alert.facts["failed"]) == ("ops_flaky", 15, 15)

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=run.ctx.options.alert_failure_window_s + 1)
    evaluate(run.ctx, now=later)  # the window has moved past the failures
    run.settle(fired=1, resolved=1)


def test_dead_letters_growing(alerting: Any, broker: NightshiftRedisBroker, tmp_path: Path) -> None:
    run = alerting(OPS_ALERT_DEAD_LETTERS_MAX="3")
    for number in range(3):
        ops_flaky.send(str(tmp_path / f"missing-{number}"))

    def dead() -> int:
        broker.record_writer.flush()
        with run.ctx.sessions() as session:
            return int(session.scalar(text("SELECT count(*) FROM job_records WHERE status = 'dead'")) or 0)

    wait_for(lambda: dead() == 3, timeout=30, what="three dead jobs")
    evaluate(run.ctx)
    run.settle(fired=1, resolved=0)
    assert _only(run, "dead_letters").facts == {"queue": QUEUE, "dead": 3, "threshold": 3, "window_s": 900}
    evaluate(run.ctx, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=901))
    run.settle(fired=1, resolved=1)


def test_performance_drift_against_the_same_hour_last_week(alerting: Any, clean_db: Engine) -> None:
    run = alerting(OPS_ALERT_DRIFT_MIN_SAMPLES="50")
    now = dt.datetime.now(dt.UTC)
    insert = text(
        "INSERT INTO task_audit (message_id, actor, queue, attempt, outcome, started_at, finished_at, duration_ms)"
        " SELECT gen_random_uuid(), 'render_feed', 'posts_normal', 1, 'done', :at, :at, :ms"
        " FROM generate_series(1, :n)"
    )
    with clean_db.begin() as connection:
        for days in range(1, 8):  # the same hour of the last seven days: 100 ms
            at = now - dt.timedelta(days=days, minutes=30)
            connection.execute(insert, {"at": at, "ms": 100, "n": 10})
        connection.execute(insert, {"at": now - dt.timedelta(minutes=30), "ms": 450, "n": 60})

    evaluate(run.ctx, now=now)
    run.settle(fired=1, resolved=0)
    alert = _only(run, "perf_drift")
    assert (alert.facts["p95_ms"], alert.facts["baseline_p95_ms"], alert.facts["ratio"]) == (450.0, 100.0, 4.5)
    evaluate(run.ctx, now=now + dt.timedelta(hours=2))
    run.settle(fired=1, resolved=1)


def test_a_killed_worker(alerting: Any, env: CommonSettings, tmp_path: Path) -> None:
    run = alerting(OPS_ALERT_WORKER_LOST_AFTER_S="1")

    def slow_worker() -> list[Any]:
        return [w for w in live_workers(run.ctx.broker) if w.service == "slowsvc"]

    with service_process(["-m", "tests.support.slow_service"], tmp_path / "first.log") as first:
        [victim] = wait_for(slow_worker, timeout=30, what="the first slowsvc worker")
        evaluate(run.ctx)  # seen alive
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: not slow_worker(), timeout=30, what="the killed worker's heartbeat to go stale")

        def lost() -> bool:
            evaluate(run.ctx)
            return bool(run.alerts())

        wait_for(lost, timeout=20, what="the lost worker alert")
    run.settle(fired=1, resolved=0)
    alert = _only(run, "worker_lost")
    assert (alert.facts["service"], alert.facts["pid"]) == ("slowsvc", victim.pid)

    with service_process(["-m", "tests.support.slow_service"], tmp_path / "second.log"):
        wait_for(slow_worker, timeout=30, what="a replacement slowsvc worker")
        evaluate(run.ctx)
        run.settle(fired=1, resolved=1)


def test_a_cleanly_stopped_worker_is_not_lost(alerting: Any, tmp_path: Path) -> None:
    run = alerting(OPS_ALERT_WORKER_LOST_AFTER_S="1")
    with service_process(["-m", "tests.support.slow_service"], tmp_path / "worker.log"):
        wait_for(
            lambda: [w for w in live_workers(run.ctx.broker) if w.service == "slowsvc"],
            timeout=30,
            what="a slowsvc worker",
        )
        evaluate(run.ctx)
    wait_for(
        lambda: not [w for w in live_workers(run.ctx.broker) if w.service == "slowsvc"],
        timeout=30,
        what="the worker gone",
    )
    evaluate(run.ctx, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
    assert run.alerts() == []


def test_a_stopped_scheduler_misses_a_fire(alerting: Any, tmp_path: Path) -> None:
    """A real scheduler fires, is killed, and the evaluator notices; a new one resolves the alert."""
    run = alerting(OPS_ALERT_SCHEDULE_GRACE_S="2")
    env = {"SCHEDULER_EXTRA_SCHEDULES": "tests.support.ops_schedules", "SCHEDULER_LEASE_TTL_MS": "1000"}

    def last_fire() -> dt.datetime | None:
        with run.ctx.sessions() as session:
            fired: dt.datetime | None = session.scalar(
                select(ScheduleRow.last_enqueued_at).where(ScheduleRow.name == HEARTBEAT)
            )
            return fired

    with scheduler_processes(1, tmp_path, "first", env) as started:
        [(process, _)] = started.values()
        wait_for(last_fire, timeout=90, what="a first fire (the process started)")
        # Only the test's every-second schedule may fall due while the scheduler is down (a
        # platform schedule every five minutes could too): the operators paused the others.
        with transaction(run.ctx.sessions) as session:
            for name in session.scalars(select(ScheduleRow.name).where(ScheduleRow.name != HEARTBEAT)):
                schedule_control.change(session, name, "pause", by="test")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def alerts_after_evaluating() -> list[Alert]:
        evaluate(run.ctx)
        alerts: list[Alert] = run.alerts()
        return alerts

    wait_for(alerts_after_evaluating, timeout=30, what="the schedule_missed alert")
    run.settle(fired=1, resolved=0)
    alert = _only(run, "schedule_missed")
    assert alert.facts["schedule"] == HEARTBEAT and alert.facts["late_s"] >= 2

    with scheduler_processes(1, tmp_path, "second", env):  # takes over once the killed one's lease expired
        wait_for(
            lambda: all(alert.resolved_at for alert in alerts_after_evaluating()),
            timeout=90,
            what="the alert resolved by a firing scheduler",
        )
        run.settle(fired=1, resolved=1)
    assert _only(run, "schedule_missed").id == alert.id


def test_a_silenced_alert_delivers_nothing(alerting: Any, broker: NightshiftRedisBroker) -> None:
    run = alerting(OPS_ALERT_BACKLOG_MAX="1")
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    alert_lifecycle.silence(run.ctx.sessions, "backlog:", until=until, reason="maintenance", by="olga")
    for _ in range(3):
        broker.enqueue(_idle_message())
    evaluate(run.ctx)
    purge_queue(broker, IDLE)
    evaluate(run.ctx)

    [alert] = run.alerts()
    assert (alert.rule, alert.notified, alert.resolved_at is not None) == ("backlog", False, True)
    with run.ctx.sessions() as session:
        assert session.scalar(select(text("count(*)")).select_from(AlertNotice)) == 0  # nothing to deliver
    assert run.received.deliveries == [] and run.emails() == []


def test_an_alert_raised_by_another_service_goes_through_the_lifecycle(alerting: Any) -> None:
    run = alerting()
    event: dict[str, Any] = {
        "alert_key": "posts:content_anomaly:2026-11-24",
        "source": "posts",
        "kind": "content_anomaly",
        "severity": "warning",
        "summary": "Unusual content activity on 2026-11-24",
        "facts": {"posts": 60, "usual": 11},
    }
    publish("ops.alert_raised", event, broker=run.ctx.broker)
    run.settle(fired=1, resolved=0)
    publish("ops.alert_raised", event, broker=run.ctx.broker)  # the same key: recorded once
    [alert] = wait_for(run.alerts, what="the raised alert")
    assert (alert.source, alert.rule, alert.key) == ("posts", "content_anomaly", "raised:" + event["alert_key"])
    [hook] = run.received.of("firing")
    assert hook["alert"]["facts"] == {"posts": 60, "usual": 11}

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=run.ctx.options.alert_raised_resolve_after_s + 1)
    evaluate(run.ctx, now=later)
    run.settle(fired=1, resolved=1)


def test_a_broker_redis_that_evicts_raises_the_eviction_alert(
    alerting: Any, env: CommonSettings, redis_client: redis.Redis[bytes]
) -> None:
    run = alerting()
    previous = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        checks = maintenance.check_dependencies(
            run.ctx.sessions, run.ctx.broker, redis_client, run.ctx.app_redis, runtime.storage(), env, run.ctx.options
        )
        run.settle(fired=1, resolved=0)
        alert = _only(run, "dependency")
        assert (alert.key, alert.severity, alert.facts["maxmemory_policy"]) == (
            "dependency:redis_broker",
            "critical",
            "allkeys-lru",
        )
        assert [check.name for check in checks if not check.ok] == ["redis_broker"]
    finally:
        redis_client.config_set("maxmemory-policy", previous)
    maintenance.check_dependencies(
        run.ctx.sessions, run.ctx.broker, redis_client, run.ctx.app_redis, runtime.storage(), env, run.ctx.options
    )
    run.settle(fired=1, resolved=1)


def test_silences_are_validated(alerting: Any) -> None:
    run = alerting()
    with pytest.raises(ValueError, match="reason"):
        alert_lifecycle.silence(run.ctx.sessions, "backlog:", until=dt.datetime.now(dt.UTC), reason=" ", by="x")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with pytest.raises(ValueError, match="future"):
        alert_lifecycle.silence(run.ctx.sessions, "backlog:", until=past, reason="r", by="x")
