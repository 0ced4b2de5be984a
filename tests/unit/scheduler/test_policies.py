"""Misfire and overlap policies, decided on plain times."""

from __future__ import annotations

import datetime as dt

import pytest

from nightshift.common.fire_times import FireTimes
from nightshift.common.schedules import MisfirePolicy
from nightshift.scheduler.policies import MISSING_RECORD_GRACE, FirePlan, overlaps, plan_fires

T0 = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
EVERY_MINUTE = FireTimes("* * * * *", "UTC")
SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)


def plan(
    misfire: MisfirePolicy,
    *,
    cursor: dt.datetime,
    now: dt.datetime,
    grace: dt.timedelta = 10 * MINUTE,
    window: dt.timedelta = 60 * MINUTE,
) -> FirePlan:
    return plan_fires(
        EVERY_MINUTE,
        cursor=cursor,
        now=now,
        misfire=misfire,
        grace=grace,
        catch_up_window=window,
        tolerance=SECOND,
    )


@pytest.mark.parametrize("misfire", ["skip", "coalesce", "catch_up"])
def test_on_time_fire_runs_under_every_policy(misfire: MisfirePolicy) -> None:
    result = plan(misfire, cursor=T0 - 30 * SECOND, now=T0 + dt.timedelta(milliseconds=3))

    assert result.run == [T0]
    assert result.skipped == []
    assert result.handled_through == T0


def test_nothing_due_changes_nothing() -> None:
    result = plan("coalesce", cursor=T0, now=T0 + 30 * SECOND)

    assert result.run == [] and result.skipped == [] and result.handled_through is None


def test_skip_drops_every_missed_fire_and_reports_it() -> None:
    # Down from 12:00:30 to 12:05:20: the fires of 12:01..12:05 were missed.
    result = plan("skip", cursor=T0, now=T0 + 5 * MINUTE + 20 * SECOND)

    assert result.run == []
    assert result.skipped == [T0 + n * MINUTE for n in range(1, 6)]
    assert result.handled_through == T0 + 5 * MINUTE


def test_coalesce_runs_the_latest_missed_fire_once() -> None:
    result = plan("coalesce", cursor=T0, now=T0 + 5 * MINUTE + 20 * SECOND)

    assert result.run == [T0 + 5 * MINUTE]
    assert result.skipped == [T0 + n * MINUTE for n in range(1, 5)]


def test_coalesce_skips_when_the_latest_missed_fire_is_past_the_grace() -> None:
    result = plan("coalesce", cursor=T0, now=T0 + 5 * MINUTE + 20 * SECOND, grace=10 * SECOND)

    assert result.run == []
    assert result.skipped == [T0 + n * MINUTE for n in range(1, 6)]
    assert result.handled_through == T0 + 5 * MINUTE


def test_coalesce_folds_missed_fires_into_an_on_time_one() -> None:
    result = plan("coalesce", cursor=T0, now=T0 + 5 * MINUTE + dt.timedelta(milliseconds=2))

    assert result.run == [T0 + 5 * MINUTE]
    assert result.skipped == [T0 + n * MINUTE for n in range(1, 5)]


def test_catch_up_runs_every_missed_fire_within_the_window_in_order() -> None:
    result = plan("catch_up", cursor=T0, now=T0 + 5 * MINUTE + 20 * SECOND, window=3 * MINUTE)

    # 12:03, 12:04, 12:05 are within three minutes of 12:05:20; 12:01 and 12:02 are not.
    assert result.run == [T0 + n * MINUTE for n in (3, 4, 5)]
    assert result.skipped == [T0 + n * MINUTE for n in (1, 2)]
    assert result.handled_through == T0 + 5 * MINUTE


def test_long_outage_is_not_enumerated_but_reported() -> None:
    # A year down with an every-minute schedule: only the windows are looked at.
    now = T0 + dt.timedelta(days=365)
    result = plan("catch_up", cursor=T0, now=now + 30 * SECOND, window=3 * MINUTE)

    assert result.skipped_before == now + 30 * SECOND - 10 * MINUTE  # the widest window (the grace)
    assert result.run == [now - n * MINUTE for n in (2, 1, 0)]
    assert len(result.skipped) == 7


def test_overlap_allow_never_skips() -> None:
    assert not overlaps("allow", previous_status="running", previous_enqueued_at=T0, now=T0 + SECOND)


@pytest.mark.parametrize(
    ("status", "skipped"),
    [("queued", True), ("running", True), ("retrying", True), ("done", False), ("dead", False), ("skipped", False)],
)
def test_overlap_skip_skips_while_the_previous_run_is_unfinished(status: str, skipped: bool) -> None:
    assert overlaps("skip", previous_status=status, previous_enqueued_at=T0, now=T0 + MINUTE) is skipped


def test_overlap_skip_counts_a_just_enqueued_run_without_record_as_queued() -> None:
    # Job records are written in batches: a run enqueued a moment ago may have none yet.
    assert overlaps("skip", previous_status=None, previous_enqueued_at=T0, now=T0 + SECOND)
    # A record purged long after (retention) does not block the schedule forever.
    assert not overlaps("skip", previous_status=None, previous_enqueued_at=T0, now=T0 + MISSING_RECORD_GRACE + SECOND)
    # A schedule that never ran has nothing to overlap.
    assert not overlaps("skip", previous_status=None, previous_enqueued_at=None, now=T0)
