"""What the ops process exports for Prometheus and for KEDA, read from Redis and PostgreSQL at scrape time.

Prometheus (``/metrics``): per queue ``nightshift_queue_messages{queue,state}``
(ready, in_flight, delayed, dead), ``nightshift_queue_oldest_age_seconds`` and
``nightshift_queue_backlog``; per worker pool (a service) ``nightshift_pool_backlog{pool}``
and ``nightshift_pool_oldest_age_seconds{pool}``; ``nightshift_live_workers{service}``;
``nightshift_schedule_lag_seconds{schedule}`` (how late the last fire was
enqueued after its time) and ``nightshift_schedule_paused``.

KEDA's metrics-api scaler (``/api/metrics/backlog/{pool}``, a ``read`` token):
the pool's backlog (see :func:`nightshift.common.queue_stats.backlog`: ready plus
in flight plus the delayed messages due within 30 s) and its oldest ready
message's age, as JSON numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select

from nightshift.common.db.models import ScheduleRow
from nightshift.common.queue_stats import backlog, queue_stats
from nightshift.ops import views
from nightshift.ops.context import OpsContext


class UnknownPool(LookupError):
    """Neither a service (worker pool) nor a queue of one."""


def pool_queues(ctx: OpsContext, pool: str) -> tuple[str, ...]:
    """The queues of worker pool *pool*: a service's queues together, or one queue.

    Raises:
      UnknownPool: *pool* names no service and no queue.
    """
    queues = ctx.pools.get(pool) or ((pool,) if pool in ctx.queues else None)
    if queues is None:
        raise UnknownPool(f"unknown pool {pool!r} (services: {', '.join(ctx.pools)}; or a queue name)")
    return queues


def pool_backlog(ctx: OpsContext, pool: str) -> dict[str, float]:
    """KEDA's input for *pool*: its backlog and the age in seconds of its oldest ready message (0 if none).

    Raises:
      UnknownPool: *pool* names no service and no queue.
    """
    stats = queue_stats(ctx.broker, list(pool_queues(ctx, pool)))
    oldest = max((item.oldest_age_s or 0.0 for item in stats), default=0.0)
    return {"backlog": backlog(stats), "oldest_age_seconds": round(oldest, 3)}


class OpsCollector(Collector):
    """Collects the queue, worker and schedule gauges on each scrape."""

    def __init__(self, ctx: OpsContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "nightshift_queue_messages", "Messages per queue and state.", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "nightshift_queue_oldest_age_seconds", "Age of the oldest ready message.", labels=["queue"]
        )
        pending = GaugeMetricFamily(
            "nightshift_queue_backlog", "Ready + in flight + delayed due within 30 s.", labels=["queue"]
        )
        by_queue = {item.queue: item for item in queue_stats(self.ctx.broker, self.ctx.queues)}
        for item in by_queue.values():
            for state in ("ready", "in_flight", "delayed", "dead"):
                messages.add_metric([item.queue, state], getattr(item, state))
            oldest.add_metric([item.queue], item.oldest_age_s or 0.0)
            pending.add_metric([item.queue], backlog(item))
        yield from (messages, oldest, pending)

        pool_backlog_family = GaugeMetricFamily(
            "nightshift_pool_backlog", "Backlog of a worker pool (its service's queues).", labels=["pool"]
        )
        pool_oldest = GaugeMetricFamily(
            "nightshift_pool_oldest_age_seconds", "Age of a pool's oldest ready message.", labels=["pool"]
        )
        for pool, queues in self.ctx.pools.items():
            stats = [by_queue[queue] for queue in queues]
            pool_backlog_family.add_metric([pool], backlog(stats))
            pool_oldest.add_metric([pool], max((item.oldest_age_s or 0.0 for item in stats), default=0.0))
        yield from (pool_backlog_family, pool_oldest)

        workers = GaugeMetricFamily("nightshift_live_workers", "Live worker processes per service.", labels=["service"])
        for service, count in views.workers_per_service(self.ctx).items():
            workers.add_metric([service], count)
        yield workers

        lag = GaugeMetricFamily(
            "nightshift_schedule_lag_seconds",
            "How late the last fire was enqueued after its time.",
            labels=["schedule"],
        )
        paused = GaugeMetricFamily("nightshift_schedule_paused", "1 while the schedule is paused.", labels=["schedule"])
        query = select(
            ScheduleRow.name,
            ScheduleRow.last_fire_at,
            ScheduleRow.last_enqueued_at,
            ScheduleRow.changed_at,
            ScheduleRow.paused,
        )
        with self.ctx.sessions() as session:
            for name, fired_for, enqueued_at, changed_at, is_paused in session.execute(query):
                # A "run now" stamps last_enqueued_at and changed_at alike: not a fire, so no lag.
                if fired_for is not None and enqueued_at is not None and enqueued_at != changed_at:
                    lag.add_metric([name], max((enqueued_at - fired_for).total_seconds(), 0.0))
                paused.add_metric([name], 1.0 if is_paused else 0.0)
        yield from (lag, paused)


def ops_registry(ctx: OpsContext) -> CollectorRegistry:
    """A registry holding only the :class:`OpsCollector` of *ctx*."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector(ctx))
    return registry
