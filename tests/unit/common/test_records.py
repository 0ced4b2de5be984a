"""Events about one message merge into its job record whatever order they arrive in."""

from __future__ import annotations

import datetime as dt
import itertools

from nightshift.common.records import JobEvent, merge

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _event(status: str, seconds: int, **fields: object) -> JobEvent:
    return JobEvent("m", "a", "q", status, T0 + dt.timedelta(seconds=seconds), **fields)  # type: ignore[arg-type]


def test_merge_is_order_independent() -> None:
    events = [
        _event("queued", 0, enqueued_at=T0, trigger="event:user.registered", args={"user_id": 1}),
        _event("running", 1, attempts=1, started_at=T0 + dt.timedelta(seconds=1)),
        _event("retrying", 2, attempts=1, error="TransientError: 503"),
        _event("running", 3, attempts=2, started_at=T0 + dt.timedelta(seconds=3)),
        _event("done", 4, attempts=2, finished_at=T0 + dt.timedelta(seconds=4)),
    ]
    results = []
    for order in itertools.permutations(events):
        merged = order[0]
        for event in order[1:]:
            merged = merge(merged, event)
        results.append(merged)

    result = results[0]
    assert all(r == result for r in results)
    assert result.status == "done"
    assert result.attempts == 2
    assert result.enqueued_at == T0
    assert result.started_at == T0 + dt.timedelta(seconds=3)
    assert result.trigger == "event:user.registered"
    assert result.args == {"user_id": 1}
    assert result.error == "TransientError: 503"
