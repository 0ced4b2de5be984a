"""The broker factory: one place that declares the whole middleware stack.

Dramatiq's defaults are not relied on; the order below matters because
after-hooks run in reverse: the retry decision is taken first, then recorded,
counted and traced.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    ShutdownNotifications,
)
from prometheus_client import CollectorRegistry

from nightshift.common.breakers import BreakerCollector
from nightshift.common.db.engine import make_engine
from nightshift.common.encoder import install_encoder
from nightshift.common.middleware.dead_letter_reasons import DeadLetterReasons
from nightshift.common.middleware.job_progress import JobProgress
from nightshift.common.middleware.job_records import JobRecords
from nightshift.common.middleware.liveness import WorkerLiveness
from nightshift.common.middleware.metrics import Metrics
from nightshift.common.middleware.retries import ScheduledRetries
from nightshift.common.middleware.revocations import Revocations
from nightshift.common.middleware.signatures import MessageSigning, SignatureCheck
from nightshift.common.middleware.time_limits import TimeLimits
from nightshift.common.middleware.tracing import Tracing
from nightshift.common.records import RecordWriter
from nightshift.common.records_spill import RecordSpill
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.redis_ha import ReplicatedRedisBroker, redis_client
from nightshift.common.settings import CommonSettings
from nightshift.common.signing import MessageSigner


def middleware_stack(
    settings: CommonSettings, *, writer: RecordWriter, registry: CollectorRegistry
) -> list[Middleware]:
    """Every middleware a Nightshift broker runs, in order.

    The signature check is first (a refused message meets no other middleware)
    and the signing last (what the others add on enqueue is signed too).
    """
    signer = MessageSigner(settings.signing_keys())
    return [
        SignatureCheck(signer=signer),
        AgeLimit(),
        Revocations(),
        TimeLimits(time_limit_ms=settings.task_time_limit_ms),
        ShutdownNotifications(),
        CurrentMessage(),
        Callbacks(),
        Pipelines(),
        Tracing(),
        Metrics(registry=registry),
        JobRecords(writer=writer),
        JobProgress(engine=writer.engine),
        DeadLetterReasons(),
        ScheduledRetries(delays_ms=settings.retry_delays_ms),
        WorkerLiveness(interval_ms=settings.recovery_interval_ms),
        MessageSigning(signer=signer),
    ]


def build_broker(
    settings: CommonSettings,
    *,
    writer: RecordWriter | None = None,
    registry: CollectorRegistry | None = None,
    set_global: bool = True,
    **options: Any,
) -> NightshiftRedisBroker:
    """A Redis broker on the broker database with Nightshift's full middleware stack.

    Parameters:
      writer: Where job records go (a new one on ``DATABASE_URL`` by default).
      registry: Where metrics go (a new registry by default, kept as ``broker.metrics_registry``);
        the circuit breakers' states are added to it.
      set_global: Make it Dramatiq's global broker, as actors declared later expect.
      options: Passed to :class:`NightshiftRedisBroker` (a ``client`` of its own replaces the
        one built on ``settings.broker_url`` with the TLS settings).
    """
    install_encoder()
    registry = registry or CollectorRegistry()
    registry.register(BreakerCollector(redis_client(settings)))
    writer = writer or RecordWriter(
        make_engine(settings.database_url, pool_size=2, application_name="nightshift-records"),
        flush_interval_ms=settings.record_flush_interval_ms,
        spill=RecordSpill(settings.record_spill_dir) if settings.record_spill_dir else None,
    )
    # Through Sentinel when configured, with the TLS material of REDIS_TLS_* (redis_ha.redis_client).
    options.setdefault("client", redis_client(settings, db=settings.broker_redis_db))
    if settings.redis_wait_replicas:
        options.update(wait_replicas=settings.redis_wait_replicas, wait_timeout_ms=settings.redis_wait_timeout_ms)
    broker_class = ReplicatedRedisBroker if settings.redis_wait_replicas else NightshiftRedisBroker
    broker = broker_class(
        middleware=middleware_stack(settings, writer=writer, registry=registry),
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        **options,
    )
    broker.metrics_registry = registry
    broker.record_writer = writer
    if set_global:
        dramatiq.set_broker(broker)
    return broker


def find_middleware(broker: dramatiq.Broker, kind: type[Middleware]) -> Any:
    """The broker's middleware of type *kind*.

    Raises:
      LookupError: When the stack has none.
    """
    for middleware in broker.middleware:
        if isinstance(middleware, kind):
            return middleware
    raise LookupError(f"no {kind.__name__} middleware on this broker")
