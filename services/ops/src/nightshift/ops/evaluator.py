"""The alert evaluator: every ``OPS_ALERT_INTERVAL_S`` the rules run once, on one process only.

Every ops web process runs an :class:`AlertEvaluator` thread; a Redis lease
(:class:`~nightshift.common.lease.LeaderLease`, as the scheduler's) makes one of them
active and the others stand by, taking over within the lease's TTL when it stops.
:func:`evaluate` is one round: read the state (queues and workers in Redis, the audit
trail and schedules in PostgreSQL, with plain reads only), apply the rules, move the
alerts through their lifecycle and hand the notices to the ``deliver_alert_notice``
actor.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from nightshift.common.contracts.ops import DELIVER_ALERT_NOTICE
from nightshift.common.lease import LeaderLease
from nightshift.common.queue_stats import queue_stats
from nightshift.common.workers import live_workers, running_jobs, stopped_workers
from nightshift.ops import alert_lifecycle, alert_rules
from nightshift.ops.alert_rules import Condition
from nightshift.ops.context import OpsContext

logger = logging.getLogger(__name__)

#: The evaluator's lease and fencing counter (application Redis).
LEASE_KEY = "nightshift:ops:evaluator:leader"
FENCE_KEY = "nightshift:ops:evaluator:fence"

#: A notice still undelivered this long after it was written is handed over again.
REDELIVER_AFTER = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Evaluation:
    """One round: the conditions found, the rules that could not be evaluated, and the transitions."""

    conditions: list[Condition]
    failed_rules: dict[str, str]
    transitions: alert_lifecycle.Transitions
    notices: list[int] = field(default_factory=list)


def evaluate(ctx: OpsContext, now: dt.datetime | None = None) -> Evaluation:
    """Run every rule once, move the alerts along and enqueue their notices.

    A rule whose source fails (Redis or PostgreSQL unreachable) is skipped and logged:
    its alerts neither fire nor resolve this round.
    """
    now = now or dt.datetime.now(dt.UTC)
    options = ctx.options
    conditions: list[Condition] = []
    failed: dict[str, str] = {}

    def run(names: tuple[str, ...], rule: Callable[[], list[Condition]]) -> None:
        try:
            conditions.extend(rule())
        except Exception as error:
            logger.warning("Alert rules %s could not be evaluated: %s", ", ".join(names), error)
            for name in names:
                failed[name] = f"{type(error).__name__}: {error}"

    stats = []
    workers = []
    try:
        stats = queue_stats(ctx.broker, ctx.queues)
        workers = live_workers(ctx.broker)
    except Exception as error:
        for name in ("backlog", "oldest_message", "no_consumer", "worker_lost", "stuck_job"):
            failed[name] = f"{type(error).__name__}: {error}"
    if "backlog" not in failed:
        run(("backlog",), lambda: alert_rules.backlog(stats, options))
        run(("oldest_message",), lambda: alert_rules.oldest_message(stats, options))
        run(("no_consumer",), lambda: alert_rules.no_consumer(stats, workers, options))
        stopped_of = partial(stopped_workers, ctx.broker)
        run(("worker_lost",), lambda: alert_rules.worker_lost(ctx.app_redis, workers, stopped_of, options, now))

    def database_rules() -> list[Condition]:
        with ctx.sessions() as session:
            found: list[Condition] = []
            if "stuck_job" not in failed:
                found += alert_rules.stuck_job(session, running_jobs(ctx.broker), options, now)
            found += alert_rules.failure_rate(session, options, now)
            found += alert_rules.perf_drift(session, options, now)
            found += alert_rules.dead_letters(session, options, now)
            found += alert_rules.schedule_missed(session, options, now)
            return found

    run(("stuck_job", "failure_rate", "perf_drift", "dead_letters", "schedule_missed"), database_rules)
    evaluated = [rule for rule in alert_rules.RULES if rule not in failed]
    transitions = alert_lifecycle.apply(ctx.sessions, conditions, rules=evaluated, now=now)
    older_than = now - dt.timedelta(seconds=options.alert_raised_resolve_after_s)
    notices = transitions.notices + alert_lifecycle.resolve_stale_raised(ctx.sessions, older_than=older_than, now=now)
    with ctx.sessions() as session:
        notices += alert_lifecycle.undelivered_notices(
            session, older_than=now - REDELIVER_AFTER, webhook=bool(options.alert_webhook_url)
        )
    for notice_id in dict.fromkeys(notices):
        DELIVER_ALERT_NOTICE.send({"notice_id": notice_id}, broker=ctx.broker)
    return Evaluation(conditions, failed, transitions, list(dict.fromkeys(notices)))


class AlertEvaluator:
    """A thread that evaluates the rules every interval while this process holds the lease.

    Parameters:
      ctx: The web process's context (broker, sessions, application Redis, settings).
      owner: This process's identity in the lease (default ``host:pid:random``).
    """

    def __init__(self, ctx: OpsContext, *, owner: str | None = None) -> None:
        self.ctx = ctx
        self.lease = LeaderLease(
            ctx.app_redis,
            ttl_ms=ctx.options.alert_lease_ttl_ms,
            key=LEASE_KEY,
            fence=FENCE_KEY,
            owner=owner,
            role="alert evaluator",
        )
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nightshift-alert-evaluator", daemon=True)

    def start(self) -> AlertEvaluator:
        self.lease.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop evaluating and hand the lease over."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.lease.stop()

    def _run(self) -> None:
        interval = self.ctx.options.alert_interval_s
        while not self._stop.is_set():
            if self.lease.token() is not None or self.lease.attempt() is not None:
                try:
                    evaluate(self.ctx)
                    self.rounds += 1
                except Exception:
                    logger.exception("Alert evaluation failed; trying again in %g s.", interval)
            self._stop.wait(interval)
