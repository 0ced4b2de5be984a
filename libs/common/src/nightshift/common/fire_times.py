"""Fire times of a cron expression in a timezone, with DST handled on the wall clock.

A cron expression describes wall-clock times. The fields are matched by
APScheduler's :class:`~apscheduler.triggers.cron.CronTrigger` on a DST-free
clock (the wall time written as if it were UTC), then each wall time is mapped
to an instant:

* a wall time that exists once is that instant;
* a wall time that exists twice (fall-back) is its first occurrence only;
* a wall time that does not exist (spring-forward) is the first instant after
  the gap, and several such times collapse into that one instant.

So a daily 02:30 job fires once on both DST days, and an hourly job fires 23
times on the spring-forward day and 24 times on the fall-back day. APScheduler
3.11's own zone-aware trigger gets both days wrong (it fires a repeated time
twice and then keeps returning the same instant), which is why it is not used
with the zone directly.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from nightshift.common.schedules import crontab_to_trigger_fields, validate_timezone

_SECOND = dt.timedelta(seconds=1)


class FireTimes:
    """The instants a cron expression fires at in a timezone.

    Parameters:
      cron: Five fields, or six with seconds first.
      timezone: IANA zone name.

    Raises:
      ValueError: When the expression or the zone is malformed.
    """

    def __init__(self, cron: str, timezone: str) -> None:
        self.cron = cron
        self.zone: ZoneInfo = validate_timezone(timezone)
        self._wall = CronTrigger(**crontab_to_trigger_fields(cron), timezone=dt.UTC)

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """The first fire strictly after the instant *after* (aware), in UTC; None if there is none."""
        wall: dt.datetime | None = _naive(after.astimezone(self.zone))
        while wall is not None:
            wall = self._next_wall(wall)
            if wall is not None and (instant := wall_to_instant(wall, self.zone)) > after:
                return instant
        return None

    def between(self, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
        """Every fire in the interval (*after*, *until*], in order."""
        fires = []
        current = self.next_after(after)
        while current is not None and current <= until:
            fires.append(current)
            current = self.next_after(current)
        return fires

    def _next_wall(self, wall: dt.datetime) -> dt.datetime | None:
        """The first matching wall time strictly after *wall* (naive)."""
        start = wall.replace(microsecond=0) + _SECOND
        found = self._wall.get_next_fire_time(None, start.replace(tzinfo=dt.UTC))
        return None if found is None else _naive(found)


def wall_to_instant(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The instant (UTC) a naive wall time in *zone* fires at (see the module doc)."""
    first = wall.replace(tzinfo=zone, fold=0)
    if _naive(first.astimezone(dt.UTC).astimezone(zone)) == wall:
        return first.astimezone(dt.UTC)  # exists; fold=0 is the first of two occurrences
    return _gap_end(wall, zone)


def _gap_end(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The first instant after the DST gap that swallowed the wall time *wall*."""
    # Read with the offsets before and after the transition, the wall time gives two
    # instants that bracket it; bisect to the second where the offset changes.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    high = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    low, high = min(low, high), max(low, high)
    after_offset = high.astimezone(zone).utcoffset()
    while high - low > _SECOND:
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=None, fold=0)
