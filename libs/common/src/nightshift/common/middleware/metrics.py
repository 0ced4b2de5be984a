"""Prometheus metrics of message processing, per actor and queue."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

#: Histogram buckets in seconds, from a no-op task to a long export.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class _Series(NamedTuple):
    """The labelled children of one (queue, actor), looked up once."""

    in_progress: Any
    duration: Any
    dead_lettered: Any
    outcomes: dict[str, Any]


class Metrics(Middleware):
    """Counters of outcomes, a duration histogram and the in-progress gauge.

    Parameters:
      registry: Where the metrics live (the process's default registry by default).
    """

    def __init__(self, *, registry: CollectorRegistry = REGISTRY) -> None:
        labels = ("queue", "actor")
        self.processed = Counter(
            "nightshift_messages_total",
            "Messages processed, by outcome.",
            (*labels, "outcome"),
            registry=registry,
        )
        self.duration = Histogram(
            "nightshift_message_duration_seconds",
            "Time spent processing a message.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "nightshift_messages_in_progress", "Messages being processed now.", labels, registry=registry
        )
        self.dead_lettered = Counter(
            "nightshift_messages_dead_lettered_total",
            "Messages moved to the dead letters.",
            labels,
            registry=registry,
        )
        # Single dict operations are atomic: no lock between the worker threads.
        self._started: dict[str, float] = {}
        self._series: dict[tuple[str, str], _Series] = {}

    def series(self, queue_name: str, actor_name: str) -> _Series:
        """The children of (queue, actor), created on first use and kept: ``labels()`` locks and hashes."""
        key = (queue_name, actor_name)
        series = self._series.get(key)
        if series is None:
            labels = (q_name(queue_name), actor_name)
            series = self._series[key] = _Series(
                self.in_progress.labels(*labels),
                self.duration.labels(*labels),
                self.dead_lettered.labels(*labels),
                {},
            )
        return series

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.series(message.queue_name, message.actor_name).in_progress.inc()
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        outcome = "done" if exception is None else ("dead" if message.failed else "retried")
        self._finish(message, outcome)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._finish(message, "skipped")

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.series(message.queue_name, message.actor_name).dead_lettered.inc()

    def _finish(self, message: MessageProxy, outcome: str) -> None:
        started = self._started.pop(message.message_id, None)
        series = self.series(message.queue_name, message.actor_name)
        if started is not None:  # None: skipped before this middleware saw it start (a refused message)
            series.in_progress.dec()
            series.duration.observe(time.perf_counter() - started)
        processed = series.outcomes.get(outcome)
        if processed is None:
            processed = series.outcomes[outcome] = self.processed.labels(
                q_name(message.queue_name), message.actor_name, outcome
            )
        processed.inc()
