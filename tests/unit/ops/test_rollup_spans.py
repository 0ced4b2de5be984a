"""The time ranges the actor rollup re-rolls for the minutes a batch touched."""

from __future__ import annotations

import datetime as dt

from nightshift.ops.actor_rollup import spans

T = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)


def _at(minutes: int) -> dt.datetime:
    return T + dt.timedelta(minutes=minutes)


def test_neighbouring_minutes_are_one_range_and_distant_ones_their_own() -> None:
    touched = [_at(5), _at(0), _at(1), _at(30), _at(300), _at(301)]

    assert spans(touched) == [(_at(0), _at(31)), (_at(300), _at(302))]


def test_minutes_in_another_time_zone_are_the_same_instants() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert spans([_at(0).astimezone(paris)]) == [(_at(0), _at(1))]
    assert spans([]) == []
