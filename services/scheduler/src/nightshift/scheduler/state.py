"""What the scheduler loop knows about each schedule, and what one tick decided for it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from nightshift.common.schedules import Schedule
from nightshift.scheduler.store import Fired
from nightshift.scheduler.times import FireTimes


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


@dataclass
class Decision:
    """What one tick did for one schedule, to be written to PostgreSQL."""

    state: ScheduleState
    handled_through: dt.datetime | None
    skipped: list[dt.datetime]
    skipped_before: dt.datetime | None
    overlapped: list[dt.datetime] = field(default_factory=list)
    fired: Fired | None = None
