"""The alert rules: each reads the platform's state and returns the conditions that hold now.

A rule is a plain function returning :class:`Condition` objects, one per thing in
trouble (a queue, an actor, a worker, a job, a schedule), each with a key stable
while the trouble lasts. The lifecycle (``alert_lifecycle.py``) turns conditions
into alerts: a new key fires, a key that keeps holding stays active, a key that is
gone resolves. Every rule, its threshold settings and its Prometheus equivalent are
documented in ``docs/alerts.md``. The reads are bounded: Redis in pipelined round
trips, PostgreSQL through the ``task_audit`` / ``job_records`` time indexes with no
lock taken (plain ``SELECT`` under MVCC).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import redis
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from nightshift.common.db.models import ScheduleRow
from nightshift.common.fire_times import FireTimes
from nightshift.common.queue_stats import QueueStats
from nightshift.common.workers import RunningJob, WorkerInfo
from nightshift.ops.settings import OpsSettings

#: The rules, in the order they are evaluated (and listed in the docs).
RULES = (
    "backlog",
    "oldest_message",
    "no_consumer",
    "worker_lost",
    "stuck_job",
    "failure_rate",
    "perf_drift",
    "dead_letters",
    "schedule_missed",
)

#: Application Redis hash of the workers the evaluator saw alive: id -> JSON description.
WORKERS_SEEN_KEY = "nightshift:ops:alerts:workers"

Fact = float | int | str


@dataclass(frozen=True)
class Condition:
    """Something that holds now and deserves an alert while it does.

    Parameters:
      key: Stable while the trouble lasts (``backlog:media_high``); an alert per key.
      rule: One of :data:`RULES`.
      severity: ``warning`` or ``critical``.
      summary: One line for the subject and the dashboard: facts only, no personal data.
      facts: The evidence (values and thresholds).
    """

    key: str
    rule: str
    severity: str
    summary: str
    facts: dict[str, Fact] = field(default_factory=dict)


def backlog(stats: Iterable[QueueStats], options: OpsSettings) -> list[Condition]:
    """``backlog``: a queue's backlog (ready + in flight + delayed due soon) above its threshold."""
    found = []
    for item in stats:
        limit = options.alert_backlog_max_per_queue.get(item.queue, options.alert_backlog_max)
        if item.backlog > limit:
            found.append(
                Condition(
                    f"backlog:{item.queue}",
                    "backlog",
                    "warning",
                    f"Queue {item.queue} has a backlog of {item.backlog} (threshold {limit})",
                    {"queue": item.queue, "backlog": item.backlog, "ready": item.ready, "threshold": limit},
                )
            )
    return found


def oldest_message(stats: Iterable[QueueStats], options: OpsSettings) -> list[Condition]:
    """``oldest_message``: the oldest ready message of a queue has waited longer than its threshold."""
    found = []
    for item in stats:
        limit = options.alert_oldest_age_max_s_per_queue.get(item.queue, options.alert_oldest_age_max_s)
        if item.oldest_age_s is not None and item.oldest_age_s > limit:
            found.append(
                Condition(
                    f"oldest_message:{item.queue}",
                    "oldest_message",
                    "warning",
                    f"Queue {item.queue}: the oldest message has waited {item.oldest_age_s:.0f} s "
                    f"(threshold {limit:g} s)",
                    {"queue": item.queue, "oldest_age_s": round(item.oldest_age_s, 1), "threshold_s": limit},
                )
            )
    return found


def no_consumer(stats: Iterable[QueueStats], workers: Sequence[WorkerInfo], options: OpsSettings) -> list[Condition]:
    """``no_consumer``: a queue with work waiting and no live worker consuming it (critical)."""
    consumed = {queue for worker in workers for queue in worker.queues}
    found = []
    for item in stats:
        waiting = item.ready + item.delayed_due
        if waiting >= options.alert_no_consumer_min_backlog and item.queue not in consumed:
            found.append(
                Condition(
                    f"no_consumer:{item.queue}",
                    "no_consumer",
                    "critical",
                    f"Queue {item.queue} has {waiting} messages waiting and no live worker consuming it",
                    {"queue": item.queue, "waiting": waiting, "live_consumers": 0},
                )
            )
    return found


def worker_lost(
    client: redis.Redis[bytes],
    workers: Sequence[WorkerInfo],
    stopped_of: Callable[[list[str]], set[str]],
    options: OpsSettings,
    now: dt.datetime,
) -> list[Condition]:
    """``worker_lost``: a worker seen alive whose heartbeat stopped without a clean stop (critical).

    The evaluator remembers every live worker (:data:`WORKERS_SEEN_KEY`). One that is
    gone now, did not say goodbye (its id is not in *stopped*) and whose last heartbeat
    is older than ``OPS_ALERT_WORKER_LOST_AFTER_S`` was lost (killed, host down, frozen).
    It is forgotten, and its alert resolves, once a live worker of the same service runs
    again on its host, or on any host when it was the service's only one.

    Parameters:
      stopped_of: Which of the given worker ids stopped cleanly (``workers.stopped_workers``).
    """
    live = {worker.worker_id for worker in workers}
    live_services = {(worker.service, worker.host) for worker in workers}
    live_any = {worker.service for worker in workers}
    with client.pipeline(transaction=False) as pipe:
        for worker in workers:
            description = {
                "service": worker.service,
                "host": worker.host,
                "pid": worker.pid,
                "heartbeat_ms": int(worker.heartbeat_at.timestamp() * 1000),
            }
            pipe.hset(WORKERS_SEEN_KEY, worker.worker_id, json.dumps(description))
        pipe.hgetall(WORKERS_SEEN_KEY)
        seen_raw = pipe.execute()[-1]
    gone = {raw_id.decode(): json.loads(raw) for raw_id, raw in seen_raw.items() if raw_id.decode() not in live}
    stopped = stopped_of(sorted(gone))
    found: list[Condition] = []
    forget: list[str] = []
    for worker_id, seen in gone.items():
        replaced = (seen["service"], seen["host"]) in live_services or seen["service"] in live_any
        if worker_id in stopped or replaced:
            forget.append(worker_id)
            continue
        silent_s = now.timestamp() - seen["heartbeat_ms"] / 1000
        if silent_s > options.alert_worker_lost_after_s:
            found.append(
                Condition(
                    f"worker_lost:{worker_id}",
                    "worker_lost",
                    "critical",
                    f"Worker {seen['service']} pid {seen['pid']} on {seen['host']} stopped sending heartbeats "
                    f"{silent_s:.0f} s ago",
                    {
                        "service": seen["service"],
                        "host": seen["host"],
                        "pid": seen["pid"],
                        "silent_s": round(silent_s),
                        "threshold_s": options.alert_worker_lost_after_s,
                    },
                )
            )
    if forget:
        client.hdel(WORKERS_SEEN_KEY, *forget)
    return found


_P95_BY_ACTOR = text(
    """
    SELECT actor, count(*), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
    FROM task_audit
    WHERE started_at >= :since AND actor = ANY(:actors)
    GROUP BY actor
    """
)


def stuck_job(
    session: Session, running: Sequence[RunningJob], options: OpsSettings, now: dt.datetime
) -> list[Condition]:
    """``stuck_job``: a job running longer than k x its actor's p95 over the last 24 hours."""
    if not running:
        return []
    actors = sorted({job.actor for job in running})
    p95 = {
        actor: (int(count), float(value))
        for actor, count, value in session.execute(
            _P95_BY_ACTOR, {"since": now - dt.timedelta(hours=24), "actors": actors}
        )
    }
    found = []
    for job in running:
        count, p95_ms = p95.get(job.actor, (0, 0.0))
        if count < options.alert_stuck_min_samples:
            continue
        factor = options.alert_stuck_factor_per_actor.get(job.actor, options.alert_stuck_factor)
        limit_s = max(factor * p95_ms / 1000, options.alert_stuck_min_s)
        running_s = job.running_for_s(now)
        if running_s > limit_s:
            found.append(
                Condition(
                    f"stuck_job:{job.message_id}",
                    "stuck_job",
                    "warning",
                    f"Job {job.message_id} ({job.actor}) has run for {running_s:.0f} s, "
                    f"its p95 is {p95_ms / 1000:.1f} s",
                    {
                        "job_id": job.message_id,
                        "actor": job.actor,
                        "queue": job.queue,
                        "running_s": round(running_s, 1),
                        "p95_s": round(p95_ms / 1000, 3),
                        "threshold_s": round(limit_s, 1),
                    },
                )
            )
    return found


_FAILURES = text(
    """
    SELECT actor,
           count(*) FILTER (WHERE started_at >= :recent) AS recent,
           count(*) FILTER (WHERE started_at >= :recent AND outcome IN ('retrying', 'dead')) AS recent_failed,
           count(*) FILTER (WHERE started_at < :recent) AS baseline,
           count(*) FILTER (WHERE started_at < :recent AND outcome IN ('retrying', 'dead')) AS baseline_failed
    FROM task_audit
    WHERE started_at >= :since
    GROUP BY actor
    """
)


def failure_rate(session: Session, options: OpsSettings, now: dt.datetime) -> list[Condition]:
    """``failure_rate``: an actor's recent failure rate spiked against its own previous 24 hours.

    Fires when, over the last ``OPS_ALERT_FAILURE_WINDOW_S``, the actor made at least
    ``…_MIN_ATTEMPTS`` attempts and failed at a rate at least ``…_FACTOR`` times its
    baseline and at least ``…_MIN_INCREASE`` above it (an actor that always fails 1 %
    does not alert at 3 %, one that never fails alerts at 10 %).
    """
    recent = now - dt.timedelta(seconds=options.alert_failure_window_s)
    rows = session.execute(_FAILURES, {"recent": recent, "since": recent - dt.timedelta(hours=24)})
    found = []
    for actor, attempts, failed, base_attempts, base_failed in rows:
        if attempts < options.alert_failure_min_attempts:
            continue
        rate = failed / attempts
        baseline = base_failed / base_attempts if base_attempts else 0.0
        if rate >= baseline * options.alert_failure_factor and rate - baseline >= options.alert_failure_min_increase:
            found.append(
                Condition(
                    f"failure_rate:{actor}",
                    "failure_rate",
                    "warning",
                    f"Actor {actor} fails {rate:.0%} of its attempts (baseline {baseline:.0%})",
                    {
                        "actor": actor,
                        "attempts": attempts,
                        "failed": failed,
                        "failure_rate": round(rate, 4),
                        "baseline_rate": round(baseline, 4),
                        "window_s": options.alert_failure_window_s,
                    },
                )
            )
    return found


_DRIFT = text(
    """
    WITH recent AS (
        SELECT actor, count(*) AS n, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
        FROM task_audit WHERE started_at >= :now - interval '1 hour' AND started_at < :now
        GROUP BY actor
    ), past AS (
        SELECT a.actor, count(*) AS n, percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95
        FROM generate_series(1, 7) AS d(days)
        JOIN task_audit a
          ON a.started_at >= :now - d.days * interval '1 day' - interval '1 hour'
         AND a.started_at < :now - d.days * interval '1 day'
        GROUP BY a.actor
    )
    SELECT recent.actor, recent.n, recent.p95, past.n, past.p95
    FROM recent JOIN past USING (actor)
    """
)


def perf_drift(session: Session, options: OpsSettings, now: dt.datetime) -> list[Condition]:
    """``perf_drift``: an actor's p95 over the last hour against the same hour of the previous seven days."""
    found = []
    for actor, n, p95, past_n, past_p95 in session.execute(_DRIFT, {"now": now}):
        if min(n, past_n) < options.alert_drift_min_samples or not past_p95:
            continue
        factor = options.alert_drift_factor_per_actor.get(actor, options.alert_drift_factor)
        ratio = p95 / past_p95
        if ratio > factor:
            found.append(
                Condition(
                    f"perf_drift:{actor}",
                    "perf_drift",
                    "warning",
                    f"Actor {actor}: p95 {p95:.0f} ms over the last hour, {ratio:.1f}x the same hour last week "
                    f"({past_p95:.0f} ms)",
                    {
                        "actor": actor,
                        "p95_ms": round(p95, 1),
                        "baseline_p95_ms": round(past_p95, 1),
                        "ratio": round(ratio, 2),
                        "threshold_ratio": factor,
                        "attempts": n,
                    },
                )
            )
    return found


_DEAD = text(
    """
    SELECT queue, count(*) FROM job_records
    WHERE status = 'dead' AND updated_at >= :since
    GROUP BY queue
    """
)


def dead_letters(session: Session, options: OpsSettings, now: dt.datetime) -> list[Condition]:
    """``dead_letters``: at least ``OPS_ALERT_DEAD_LETTERS_MAX`` jobs of a queue died within the window."""
    since = now - dt.timedelta(seconds=options.alert_dead_letters_window_s)
    found = []
    for queue, count in session.execute(_DEAD, {"since": since}):
        if count >= options.alert_dead_letters_max:
            found.append(
                Condition(
                    f"dead_letters:{queue}",
                    "dead_letters",
                    "warning",
                    f"Queue {queue}: {count} jobs went to the dead letters "
                    f"in {options.alert_dead_letters_window_s // 60} min",
                    {
                        "queue": queue,
                        "dead": count,
                        "threshold": options.alert_dead_letters_max,
                        "window_s": options.alert_dead_letters_window_s,
                    },
                )
            )
    return found


def schedule_missed(session: Session, options: OpsSettings, now: dt.datetime) -> list[Condition]:
    """``schedule_missed``: an active schedule's due fire was not handled within the grace (critical).

    The active scheduler moves ``handled_through`` past every fire it enqueued or
    deliberately dropped; a first unhandled fire older than ``OPS_ALERT_SCHEDULE_GRACE_S``
    means no scheduler is firing (stopped, or stuck).
    """
    rows = session.scalars(select(ScheduleRow).where(ScheduleRow.declared, ScheduleRow.paused.is_(False))).all()
    found = []
    for row in rows:
        due = FireTimes(row.effective_cron, row.timezone).next_after(row.handled_through)
        if due is None:
            continue
        late_s = (now - due).total_seconds()
        if late_s > options.alert_schedule_grace_s:
            found.append(
                Condition(
                    f"schedule_missed:{row.name}",
                    "schedule_missed",
                    "critical",
                    f"Schedule {row.name} should have fired at {due.isoformat()} and has not ({late_s:.0f} s late)",
                    {
                        "schedule": row.name,
                        "due_at": due.isoformat(),
                        "late_s": round(late_s),
                        "grace_s": options.alert_schedule_grace_s,
                    },
                )
            )
    return found
