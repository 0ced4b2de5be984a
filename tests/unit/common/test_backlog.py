"""The backlog an autoscaler sees: ready, in flight, and delayed messages due soon."""

from __future__ import annotations

from nightshift.common.queue_stats import QueueStats, backlog


def _stats(queue: str, *, ready: int, in_flight: int, delayed: int, delayed_due: int) -> QueueStats:
    return QueueStats(queue, ready, in_flight, delayed, dead=7, oldest_age_s=None, delayed_due=delayed_due)


def test_backlog_counts_ready_in_flight_and_delayed_due_soon_but_not_dead_or_later_retries() -> None:
    high = _stats("media_high", ready=10, in_flight=4, delayed=5, delayed_due=2)
    low = _stats("media_low", ready=1, in_flight=0, delayed=3, delayed_due=0)

    assert backlog(high) == 16
    assert backlog([high, low]) == 17
    assert backlog([]) == 0
