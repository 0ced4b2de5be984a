"""Fire times through DST changes in Europe/Paris and America/New_York."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from nightshift.common.fire_times import FireTimes

UTC = dt.UTC

#: (zone, spring-forward day, fall-back day, the hour that is skipped, the hour that repeats)
DST_DAYS = [
    ("Europe/Paris", dt.date(2026, 3, 29), dt.date(2026, 10, 25), 2, 2),
    ("America/New_York", dt.date(2026, 3, 8), dt.date(2026, 11, 1), 2, 1),
]

#: The first instant after each spring-forward gap, in local summer time.
GAP_END = {"Europe/Paris": "03:00+0200", "America/New_York": "03:00-0400"}


def fires_on(times: FireTimes, day: dt.date) -> list[dt.datetime]:
    """Every fire whose local date is *day*."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=times.zone) - dt.timedelta(seconds=1)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=times.zone) - dt.timedelta(seconds=1)
    return times.between(start.astimezone(UTC), end.astimezone(UTC))


def local(moment: dt.datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M%z")


@pytest.mark.parametrize(("zone", "spring", "fall", "gap_hour", "repeated_hour"), DST_DAYS)
def test_daily_time_inside_the_gap_fires_once_right_after_it(
    zone: str, spring: dt.date, fall: dt.date, gap_hour: int, repeated_hour: int
) -> None:
    times = FireTimes(f"30 {gap_hour} * * *", zone)

    fires = fires_on(times, spring)

    # 02:30 does not exist that day: one fire, at the first instant after the gap (03:00 summer time),
    # which is one second after 01:59:59 winter time.
    assert [local(t, zone) for t in fires] == [GAP_END[zone]]
    assert local(fires[0] - dt.timedelta(seconds=1), zone)[:5] == "01:59"
    # The days around it fire at 02:30 as usual.
    assert [local(t, zone)[:5] for t in fires_on(times, spring + dt.timedelta(days=1))] == [f"0{gap_hour}:30"]
    assert [local(t, zone)[:5] for t in fires_on(times, spring - dt.timedelta(days=1))] == [f"0{gap_hour}:30"]


@pytest.mark.parametrize(("zone", "spring", "fall", "gap_hour", "repeated_hour"), DST_DAYS)
def test_daily_time_that_occurs_twice_fires_once_at_its_first_occurrence(
    zone: str, spring: dt.date, fall: dt.date, gap_hour: int, repeated_hour: int
) -> None:
    times = FireTimes(f"30 {repeated_hour} * * *", zone)

    fires = fires_on(times, fall)

    assert len(fires) == 1
    first, second = (
        dt.datetime.combine(fall, dt.time(repeated_hour, 30), tzinfo=ZoneInfo(zone)).replace(fold=fold)
        for fold in (0, 1)
    )
    assert first.astimezone(UTC) != second.astimezone(UTC)  # the wall time really is repeated
    assert fires == [first.astimezone(UTC)]
    # And the next fire is the next day's, not the repeat.
    assert times.next_after(fires[0]) == dt.datetime.combine(
        fall + dt.timedelta(days=1), dt.time(repeated_hour, 30), tzinfo=ZoneInfo(zone)
    ).astimezone(UTC)


@pytest.mark.parametrize(("zone", "spring", "fall", "gap_hour", "repeated_hour"), DST_DAYS)
def test_hourly_schedule_fires_once_per_existing_wall_hour(
    zone: str, spring: dt.date, fall: dt.date, gap_hour: int, repeated_hour: int
) -> None:
    times = FireTimes("0 * * * *", zone)

    spring_fires = fires_on(times, spring)
    fall_fires = fires_on(times, fall)

    # Spring-forward: 23 fires, none twice, the missing hour folded into the one after the gap.
    assert len(spring_fires) == len(set(spring_fires)) == 23
    assert [t.astimezone(ZoneInfo(zone)).hour for t in spring_fires] == [h for h in range(24) if h != gap_hour]
    # Fall-back: the repeated hour fires once, so 24 fires over 25 hours, one gap of two hours.
    assert len(fall_fires) == len(set(fall_fires)) == 24
    assert [t.astimezone(ZoneInfo(zone)).hour for t in fall_fires] == list(range(24))
    gaps = [b - a for a, b in itertools.pairwise(fall_fires)]
    assert sorted(set(gaps)) == [dt.timedelta(hours=1), dt.timedelta(hours=2)]
    assert gaps.count(dt.timedelta(hours=2)) == 1


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York"])
def test_every_minute_inside_the_gap_collapses_into_one_fire(zone: str) -> None:
    spring = {z: s for z, s, *_ in DST_DAYS}[zone]
    times = FireTimes("* 2 * * *", zone)

    fires = fires_on(times, spring)

    assert len(fires) == 1
    assert fires[0].astimezone(ZoneInfo(zone)).strftime("%H:%M") == "03:00"


def test_second_field_and_crontab_weekdays() -> None:
    every_five_seconds = FireTimes("*/5 * * * * *", "UTC")
    start = dt.datetime(2026, 1, 1, 12, 0, 0, 300_000, tzinfo=UTC)
    assert every_five_seconds.between(start, start + dt.timedelta(seconds=11)) == [
        dt.datetime(2026, 1, 1, 12, 0, s, tzinfo=UTC) for s in (5, 10)
    ]
    # Crontab weekdays: 0 is Sunday (APScheduler's own numbering would make it Monday).
    sundays = FireTimes("0 1 * * 0", "Europe/Paris")
    first = sundays.next_after(dt.datetime(2026, 11, 18, tzinfo=UTC))
    assert first is not None
    assert first.astimezone(ZoneInfo("Europe/Paris")).strftime("%A %H:%M") == "Sunday 01:00"


def test_apschedulers_zone_aware_trigger_is_wrong_on_fall_back_which_is_why_it_is_not_used() -> None:
    # Kept as evidence: APScheduler 3.11's CronTrigger with the zone fires a repeated
    # wall time twice and then returns that same instant forever.
    zone = ZoneInfo("America/New_York")
    trigger = CronTrigger(minute="0", timezone=zone)
    now = dt.datetime(2026, 11, 1, 0, 30, tzinfo=zone)
    seen, previous = [], None
    for _ in range(4):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        seen.append(fire.astimezone(UTC))
        previous, now = fire, fire + dt.timedelta(microseconds=1)
    assert seen[-1] == seen[-2]  # stuck
    ours = FireTimes("0 * * * *", "America/New_York")
    assert ours.between(dt.datetime(2026, 11, 1, 4, 30, tzinfo=UTC), seen[-1] + dt.timedelta(hours=2)) == [
        dt.datetime(2026, 11, 1, 5, tzinfo=UTC),  # 01:00 EDT
        dt.datetime(2026, 11, 1, 7, tzinfo=UTC),  # 02:00 EST (01:00 EST, the repeat, does not fire)
        dt.datetime(2026, 11, 1, 8, tzinfo=UTC),
    ]
