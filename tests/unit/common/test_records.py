"""Events about one message merge into its job record whatever order they arrive in."""

from __future__ import annotations

import datetime as dt
import itertools

from nightshift.common.records import PRIOR_ATTEMPTS, JobEvent, attempt_number, merge

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


def test_a_status_only_moves_forward_in_a_merge() -> None:
    done = _event("done", 2, attempts=1, finished_at=T0 + dt.timedelta(seconds=2))
    late_queued = _event("queued", 3, enqueued_at=T0 + dt.timedelta(seconds=3), args={"user_id": 1})
    for merged in (merge(done, late_queued), merge(late_queued, done)):
        assert (merged.status, merged.attempts) == ("done", 1)
        assert merged.finished_at == T0 + dt.timedelta(seconds=2)
        assert merged.enqueued_at == T0 + dt.timedelta(seconds=3)
        assert merged.args == {"user_id": 1}
        assert merged.at == T0 + dt.timedelta(seconds=3)

    retrying = _event("retrying", 4, attempts=1, error="TransientError: 503")
    next_attempt = _event("running", 3, attempts=2)
    assert merge(retrying, next_attempt).status == merge(next_attempt, retrying).status == "running"
    assert merge(retrying, next_attempt).error == "TransientError: 503"


def test_attempt_numbers_continue_after_a_replay() -> None:
    assert attempt_number({}) == 1
    assert attempt_number({"retries": 2}) == 3
    assert attempt_number({PRIOR_ATTEMPTS: 4}) == 5
    assert attempt_number({PRIOR_ATTEMPTS: 4, "retries": 1}) == 6


def test_revoked_is_final_within_its_attempt() -> None:
    revoked = _event("revoked", 2, attempts=1, finished_at=T0 + dt.timedelta(seconds=2), error="revoked by operator")
    late = [
        _event("queued", 3, enqueued_at=T0 + dt.timedelta(seconds=3)),
        _event("running", 3, attempts=1),
        _event("done", 3, attempts=1),
        _event("dead", 3, attempts=1),
    ]
    for event in late:
        assert merge(revoked, event).status == merge(event, revoked).status == "revoked", event.status
