"""The scheduler's Prometheus series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SchedulerMetrics:
    """Prometheus series of the scheduler."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.fires = Counter(
            "nightshift_scheduler_fires",
            "Scheduled fires by outcome (enqueued, misfire_skipped, overlap_skipped).",
            ["schedule", "outcome"],
            registry=registry,
        )
        self.lag = Histogram(
            "nightshift_scheduler_fire_lag_seconds",
            "Time from a fire's scheduled time to its enqueue.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300),
            registry=registry,
        )
        self.active = Gauge(
            "nightshift_scheduler_active", "1 while this process is the active scheduler.", registry=registry
        )
