"""What the scheduler loop knows about each schedule, and what one tick decided for it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from nightshift.common.db.models import ScheduleRow
from nightshift.common.fire_times import FireTimes
from nightshift.common.schedules import Schedule
from nightshift.scheduler.store import Fired

logger = logging.getLogger(__name__)


@dataclass
class ScheduleState:
    """What the loop knows about one schedule."""

    schedule: Schedule
    cron: str
    timezone: str
    times: FireTimes
    paused: bool
    handled_through: dt.datetime
    last_message_id: str | None
    last_enqueued_at: dt.datetime | None
    next_fire: dt.datetime | None
    #: Set when a fire's claim was held by another scheduler: do not retry before.
    not_before: dt.datetime | None = None

    @property
    def due_at(self) -> dt.datetime | None:
        """When the loop must next look at this schedule (None: paused or never again)."""
        if self.paused or self.next_fire is None:
            return None
        return max(self.next_fire, self.not_before) if self.not_before else self.next_fire


def apply_row(state: ScheduleState | None, schedule: Schedule, row: ScheduleRow) -> ScheduleState:
    """*state* brought up to date with *row* (operators' changes, the cursor, a run by an operator).

    Parameters:
      state: What the loop knew so far (None for a schedule it has not seen yet).
      schedule: The schedule as the code declares it.
      row: Its row in PostgreSQL.

    Returns:
      *state*, or a new state when the schedule is new or fires on another cron or zone now.
    """
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
    if state.paused != row.paused:
        logger.info("Schedule %s %s.", row.name, "paused" if row.paused else "resumed")
    state.paused = row.paused
    if row.last_enqueued_at and (state.last_enqueued_at is None or row.last_enqueued_at > state.last_enqueued_at):
        # Run by an operator: the overlap policy must see that run too.
        state.last_message_id, state.last_enqueued_at = str(row.last_message_id), row.last_enqueued_at
    state.handled_through = max(state.handled_through, row.handled_through)
    state.next_fire = state.times.next_after(state.handled_through)
    return state


@dataclass
class Decision:
    """What one tick did for one schedule, to be written to PostgreSQL."""

    state: ScheduleState
    handled_through: dt.datetime | None
    skipped: list[dt.datetime]
    skipped_before: dt.datetime | None
    overlapped: list[dt.datetime] = field(default_factory=list)
    fired: Fired | None = None

    def skips(self) -> Iterator[tuple[str, list[dt.datetime]]]:
        """``(kind, fires)`` for each kind of skip this decision made: ``misfire_skipped``, ``overlap_skipped``."""
        for kind, times in (("misfire_skipped", self.skipped), ("overlap_skipped", self.overlapped)):
            if times:
                yield kind, times
