"""The scheduler's loop: while this process holds the lease, enqueue each fire once.

The loop is our own, over :class:`~nightshift.scheduler.times.FireTimes`, rather
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

import dramatiq
import redis
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.schedules import Schedule
from nightshift.scheduler import store
from nightshift.scheduler.claims import Claim, FireClaims, fire_message_id
from nightshift.scheduler.control import fire_options
from nightshift.scheduler.lease import LeaderLease
from nightshift.scheduler.metrics import SchedulerMetrics
from nightshift.scheduler.models import ScheduleRow
from nightshift.scheduler.policies import overlaps, plan_fires
from nightshift.scheduler.state import Decision, ScheduleState
from nightshift.scheduler.times import FireTimes

logger = logging.getLogger(__name__)

#: A fire's claim key outlives every window in which it could be fired again by this much.
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
      broker: Where messages are enqueued.
      lease: The leader lease (started by the caller).
      claims: Fire claims in Redis.
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
        broker: dramatiq.Broker,
        lease: LeaderLease,
        claims: FireClaims,
        session_factory: sessionmaker[Session],
        default_timezone: str,
        reload_interval: dt.timedelta,
        tolerance: dt.timedelta,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.schedules = dict(schedules)
        self.broker = broker
        self.lease = lease
        self.claims = claims
        self.session_factory = session_factory
        self.default_timezone = default_timezone
        self.reload_interval_s = reload_interval.total_seconds()
        self.tolerance = tolerance
        self.registry = registry or CollectorRegistry()
        self.metrics = SchedulerMetrics(self.registry)
        self.states: dict[str, ScheduleState] = {}
        self.last_tick = time.monotonic()
        self._token: int | None = None
        self._next_reload = 0.0

    # --- the loop ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Loop until *stop* is set."""
        while not stop.is_set():
            self.last_tick = time.monotonic()
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
            self._apply_row(schedule, row)

    def _apply_row(self, schedule: Schedule, row: ScheduleRow) -> None:
        state = self.states.get(row.name)
        cron, timezone = row.effective_cron, row.timezone
        if state is None or (state.cron, state.timezone) != (cron, timezone):
            if state is not None:
                logger.info("Schedule %s now fires on %r (%s).", row.name, cron, timezone)
            state = ScheduleState(
                schedule=schedule,
                cron=cron,
                timezone=timezone,
                times=FireTimes(cron, timezone),
                paused=row.paused,
                handled_through=row.handled_through,
                last_message_id=str(row.last_message_id) if row.last_message_id else None,
                last_enqueued_at=row.last_enqueued_at,
                next_fire=None,
            )
            self.states[row.name] = state
        if state.paused != row.paused:
            logger.info("Schedule %s %s.", row.name, "paused" if row.paused else "resumed")
        state.paused = row.paused
        if row.last_enqueued_at and (state.last_enqueued_at is None or row.last_enqueued_at > state.last_enqueued_at):
            # Run by an operator: the overlap policy must see that run too.
            state.last_message_id, state.last_enqueued_at = str(row.last_message_id), row.last_enqueued_at
        state.handled_through = max(state.handled_through, row.handled_through)
        state.next_fire = state.times.next_after(state.handled_through)

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
        """Write every decision of a tick in one transaction; False when a newer token has written.

        When PostgreSQL is down the decisions still hold in memory (the fire claims keep
        every fire single); the cursors are written with the next tick that succeeds.
        """
        fenced_out: str | None = None
        try:
            with self.session_factory() as session:
                fenced_out = self._write(session, decisions, token)
                if fenced_out is None:
                    session.commit()
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

    def _write(self, session: Session, decisions: list[Decision], token: int) -> str | None:
        """Add the decisions' events and cursors to *session*; the name of a fenced-out schedule, if any."""
        by = f"scheduler {self.lease.owner} (token {token})"
        for decision in decisions:
            name = decision.state.schedule.name
            if decision.skipped_before is not None:
                detail = f"every fire up to {decision.skipped_before}"
                store.record_event(session, name, "misfire_skipped", by=by, detail=detail)
            for kind, times in (("misfire_skipped", decision.skipped), ("overlap_skipped", decision.overlapped)):
                if times:
                    self.metrics.fires.labels(name, kind).inc(len(times))
                    logger.warning("Schedule %s: %s %d fire(s) %s..%s.", name, kind, len(times), times[0], times[-1])
                    store.record_event(
                        session,
                        name,
                        kind,
                        by=by,
                        detail=f"{len(times)} fire(s)",
                        first_fire_at=times[0],
                        last_fire_at=times[-1],
                    )
            if decision.handled_through is not None and not store.advance(
                session, name, token=token, handled_through=decision.handled_through, fired=decision.fired
            ):
                return name
        return None

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
        """Claim and enqueue one fire; None when it must be retried later."""
        schedule = state.schedule
        message_id = fire_message_id(schedule.name, scheduled_for)
        if self.lease.token() != token:
            return None
        claim = self.claims.claim(message_id, f"{self.lease.owner}|{token}")
        if claim is Claim.PENDING:
            return None
        if claim is Claim.GRANTED:
            if self.lease.token() != token:
                return None  # stalled past the lease since the check above: the claim lapses for the next one
            message = schedule.contract.message(
                schedule.payload,
                message_id=message_id,
                options=fire_options(schedule.name, scheduled_for=scheduled_for.isoformat()),
            )
            self.broker.enqueue(message)
            keep = max(schedule.grace, schedule.catch_up_window, self.tolerance) + CLAIM_KEEP_MARGIN
            self.claims.mark_enqueued(message_id, keep)
            self.metrics.fires.labels(schedule.name, "enqueued").inc()
        enqueued_at = _utcnow()
        self.metrics.lag.observe((enqueued_at - scheduled_for).total_seconds())
        state.last_message_id, state.last_enqueued_at = message_id, enqueued_at
        return store.Fired(scheduled_for=scheduled_for, message_id=message_id, enqueued_at=enqueued_at)

    # --- health ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``/status``: role, lease holder, fencing token and the next fires."""
        holder = None
        try:
            current = self.lease.holder()
            holder = None if current is None else {"owner": current.owner, "token": current.token}
        except redis.RedisError as error:
            holder = {"error": str(error)}
        return {
            "role": "active" if self._token is not None else "standby",
            "owner": self.lease.owner,
            "fencing_token": self._token,
            "lease": holder,
            "schedules": [
                {
                    "name": name,
                    "cron": state.cron,
                    "timezone": state.timezone,
                    "paused": state.paused,
                    "next_fire": None if state.paused or state.next_fire is None else state.next_fire.isoformat(),
                    "last_message_id": state.last_message_id,
                }
                for name, state in sorted(dict(self.states).items())  # the loop may be changing it
            ],
        }

    def liveness(self, max_silence_s: float = 10.0) -> tuple[bool, dict[str, Any]]:
        """Live while the loop has ticked within *max_silence_s*."""
        silence = time.monotonic() - self.last_tick
        return silence <= max_silence_s, {"last_tick_s_ago": round(silence, 3)}
