"""The scheduler's loop: while this process holds the lease, enqueue each fire once.

The loop is our own, over :class:`~nightshift.common.fire_times.FireTimes`, rather
than APScheduler's ``BackgroundScheduler`` and job stores: what matters here
(leader election with fencing, fire claims, a cursor in PostgreSQL that only the
lease holder may move, misfire and overlap decisions recorded for operators) sits
between "a fire is due" and "a message is enqueued", which APScheduler's
scheduler owns and does not let us fence. The loop sleeps until the next fire,
so a fire is enqueued within milliseconds of its time.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.schedule_control import fire_message_id, fire_options
from nightshift.common.schedules import Schedule
from nightshift.scheduler import persistence, store
from nightshift.scheduler.claims import Claim, FireClaims
from nightshift.scheduler.lease import LeaderLease
from nightshift.scheduler.metrics import SchedulerMetrics
from nightshift.scheduler.policies import overlaps, plan_fires
from nightshift.scheduler.state import Decision, ScheduleState, apply_row
from nightshift.scheduler.status import Heartbeat, describe

logger = logging.getLogger(__name__)

#: A fire's claim outlives every window in which it could be fired again by this much.
CLAIM_KEEP_MARGIN = dt.timedelta(hours=1)

#: How long the loop backs off after Redis or PostgreSQL failed.
ERROR_BACKOFF_S = 0.5

#: How soon a fire held by another scheduler's claim is looked at again.
PENDING_RETRY = dt.timedelta(milliseconds=100)

#: How often a standby looks whether its lease thread won the lease (a local check).
STANDBY_CHECK_S = 0.05


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Scheduler:
    """Fires every schedule while *lease* is held.

    Parameters:
      schedules: The declared schedules, by name.
      lease: The leader lease (started by the caller).
      claims: Fire claims in Redis; they enqueue the fires on the broker.
      session_factory: PostgreSQL.
      default_timezone: For schedules that do not name one.
      reload_interval: How often operators' changes are read.
      tolerance: A fire later than this counts as missed.
      registry: Where the metrics go.
    """

    def __init__(
        self,
        *,
        schedules: Mapping[str, Schedule],
        lease: LeaderLease,
        claims: FireClaims,
        session_factory: sessionmaker[Session],
        default_timezone: str,
        reload_interval: dt.timedelta,
        tolerance: dt.timedelta,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.schedules = dict(schedules)
        self.lease = lease
        self.claims = claims
        self.session_factory = session_factory
        self.default_timezone = default_timezone
        self.reload_interval_s = reload_interval.total_seconds()
        self.tolerance = tolerance
        self.registry = registry or CollectorRegistry()
        self.metrics = SchedulerMetrics(self.registry)
        self.states: dict[str, ScheduleState] = {}
        self.heartbeat = Heartbeat()
        self._token: int | None = None
        self._next_reload = 0.0

    # --- the loop ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Loop until *stop* is set."""
        while not stop.is_set():
            self.heartbeat.beat()
            try:
                self.tick()
            except (SQLAlchemyError, redis.RedisError) as error:
                logger.warning("Scheduler tick failed, retrying: %s", error)
                stop.wait(ERROR_BACKOFF_S)
                continue
            stop.wait(self.sleep_s())

    def tick(self) -> None:
        """Do what is due now: stand by, take over, read changes, fire."""
        token = self.lease.token()
        if token is None:
            if self._token is not None:
                logger.info("Standing by (lease lost).")
            self._token = None
            self.metrics.active.set(0)
            return
        if token != self._token:
            self._take_over(token)
        if time.monotonic() >= self._next_reload:
            self.reload()
        now = _utcnow()
        decisions = []
        for state in sorted(self._due(now), key=lambda s: s.next_fire or now):
            decisions.append(self._decide(state, token))
            if self.lease.token() != token:
                break
        if decisions:
            self._record(decisions, token)

    def sleep_s(self) -> float:
        """How long the loop may sleep: until the next fire or the next reload.

        A standby only checks its local lease state, so it looks often and takes
        over as soon as the lease thread wins the lease.
        """
        if self._token is None:
            return STANDBY_CHECK_S
        upcoming = [s.due_at for s in self.states.values() if s.due_at is not None]
        until_reload = self._next_reload - time.monotonic()
        if not upcoming:
            return max(0.0, until_reload)
        until_fire = (min(upcoming) - _utcnow()).total_seconds()
        return max(0.0, min(until_reload, until_fire))

    def _due(self, now: dt.datetime) -> list[ScheduleState]:
        return [s for s in self.states.values() if s.due_at is not None and s.due_at <= now]

    # --- taking over and reading changes ---------------------------------------

    def _take_over(self, token: int) -> None:
        with transaction(self.session_factory) as session:
            store.sync_declared(session, self.schedules, default_timezone=self.default_timezone, now=_utcnow())
        self._token = token
        self.states.clear()
        self.reload()
        self.metrics.active.set(1)
        logger.info("Active with token %d: %d schedules.", token, len(self.states))

    def reload(self) -> None:
        """Read every schedule's row: operators' changes and the cursor.

        While PostgreSQL is down the schedules keep firing as last read.
        """
        self._next_reload = time.monotonic() + self.reload_interval_s
        try:
            with self.session_factory() as session:
                rows = store.load(session)
        except SQLAlchemyError as error:
            if not self.states:
                raise
            logger.warning("Could not read the schedules; firing them as last read: %s", error)
            return
        for row in rows:
            schedule = self.schedules.get(row.name)
            if schedule is None:
                self.states.pop(row.name, None)
                continue
            self.states[row.name] = apply_row(self.states.get(row.name), schedule, row)

    # --- firing ----------------------------------------------------------------

    def _decide(self, state: ScheduleState, token: int) -> Decision:
        """Enqueue *state*'s due fires as its policies say (Redis only; PostgreSQL comes after)."""
        schedule = state.schedule
        now = _utcnow()
        plan = plan_fires(
            state.times,
            cursor=state.handled_through,
            now=now,
            misfire=schedule.misfire,
            grace=schedule.grace,
            catch_up_window=schedule.catch_up_window,
            tolerance=self.tolerance,
        )
        state.not_before = None
        decision = Decision(
            state=state,
            handled_through=plan.handled_through,
            skipped=self._not_yet_enqueued(schedule.name, plan.skipped),
            skipped_before=plan.skipped_before,
        )
        for scheduled_for in plan.run:
            if schedule.overlap == "skip" and self._previous_unfinished(state, now):
                decision.overlapped.append(scheduled_for)
                continue
            fired = self._enqueue(state, scheduled_for, token)
            if fired is None:  # lease lost or fire held by another scheduler: retry from here, soon
                decision.handled_through = scheduled_for - dt.timedelta(microseconds=1)
                state.not_before = _utcnow() + PENDING_RETRY
                break
            decision.fired = fired
        return decision

    def _record(self, decisions: list[Decision], token: int) -> bool:
        """Write every decision of a tick; False when a newer token has written (this one stands down).

        When PostgreSQL is down the decisions still hold in memory (the fire claims keep
        every fire single); the cursors are written with the next tick that succeeds.
        """
        for decision in decisions:
            name = decision.state.schedule.name
            for kind, times in decision.skips():
                self.metrics.fires.labels(name, kind).inc(len(times))
                logger.warning("Schedule %s: %s %d fire(s) %s..%s.", name, kind, len(times), times[0], times[-1])
        fenced_out: str | None = None
        by = f"scheduler {self.lease.owner} (token {token})"
        try:
            fenced_out = persistence.record(self.session_factory, decisions, token=token, by=by)
        except SQLAlchemyError as error:
            logger.warning("Could not record %d schedule decisions: %s", len(decisions), error)
        if fenced_out is not None:
            logger.warning("A scheduler with a newer token wrote %s: standing down.", fenced_out)
            self.lease.abandon()
            self._token = None
            return False
        for decision in decisions:
            state = decision.state
            if decision.handled_through is not None:
                state.handled_through = max(state.handled_through, decision.handled_through)
            state.next_fire = state.times.next_after(state.handled_through)
        return True

    def _not_yet_enqueued(self, name: str, times: list[dt.datetime]) -> list[dt.datetime]:
        """*times* less the fires another scheduler enqueued before dying (they were not missed)."""
        ids = [fire_message_id(name, t) for t in times]
        done = self.claims.enqueued(ids)
        return [t for t, message_id in zip(times, ids, strict=True) if message_id not in done]

    def _previous_unfinished(self, state: ScheduleState, now: dt.datetime) -> bool:
        try:
            with self.session_factory() as session:
                status = store.job_status(session, state.last_message_id)
        except SQLAlchemyError:
            status = None  # unknown: judged by when it was enqueued
        return overlaps(
            state.schedule.overlap, previous_status=status, previous_enqueued_at=state.last_enqueued_at, now=now
        )

    def _enqueue(self, state: ScheduleState, scheduled_for: dt.datetime, token: int) -> store.Fired | None:
        """Enqueue one fire, fenced by *token* (see :mod:`nightshift.scheduler.claims`).

        Returns:
          The fire (enqueued now or before, by any scheduler), or None when it must be
          retried later: the lease is lost, or an older scheduler's claim holds it.
        """
        schedule = state.schedule
        message_id = fire_message_id(schedule.name, scheduled_for)
        if self.lease.token() != token:
            return None
        message = schedule.contract.message(
            schedule.payload,
            message_id=message_id,
            options=fire_options(schedule.name, scheduled_for=scheduled_for.isoformat()),
        )
        keep = max(schedule.grace, schedule.catch_up_window, self.tolerance) + CLAIM_KEEP_MARGIN
        outcome = self.claims.enqueue(message, lease=self.lease, token=token, keep=keep)
        if outcome is Claim.FENCED:
            # Paused or cut off past the lease: Redis refused the message. Another scheduler fires it.
            logger.warning("Lease lost before %s's fire at %s: standing down.", schedule.name, scheduled_for)
            self.lease.abandon()
            return None
        if outcome is Claim.PENDING:
            return None
        if outcome is Claim.ENQUEUED:
            self.metrics.fires.labels(schedule.name, "enqueued").inc()
        enqueued_at = _utcnow()
        self.metrics.lag.observe((enqueued_at - scheduled_for).total_seconds())
        state.last_message_id, state.last_enqueued_at = message_id, enqueued_at
        return store.Fired(scheduled_for=scheduled_for, message_id=message_id, enqueued_at=enqueued_at)

    # --- health ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``/status``: see :func:`nightshift.scheduler.status.describe`."""
        return describe(self.lease, self._token, self.states)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """``/livez``: live while the loop has ticked recently."""
        return self.heartbeat.liveness()
