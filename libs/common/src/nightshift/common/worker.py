"""The worker entry point: one service's actors, its queues only, health, graceful stop."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import dramatiq

from nightshift.common import heap, runtime
from nightshift.common.broker import build_broker, find_middleware
from nightshift.common.health import HealthServer, readiness_check
from nightshift.common.logs import configure_logging
from nightshift.common.memory_bound import RECYCLE_EXIT_CODE, memory_bound_profile
from nightshift.common.middleware.liveness import WorkerLiveness
from nightshift.common.middleware.recycling import Recycling
from nightshift.common.outbox import OutboxRelay
from nightshift.common.processes import stop_on_signals
from nightshift.common.redis_ha import redis_client
from nightshift.common.service import ServiceSpec, load_object
from nightshift.common.tracing import configure_tracing

logger = logging.getLogger(__name__)


def run_worker(spec: ServiceSpec, *, threads: int | None = None, health_port: int | None = None) -> int:
    """Run *spec*'s worker in this process until SIGTERM or SIGINT.

    The service's own settings are loaded first: a bad variable stops it at once.
    On a signal the worker stops fetching, lets in-flight messages finish within
    ``SHUTDOWN_GRACE_MS`` (then requeues what is left), flushes its job records
    and returns 0. A memory-bound service (``spec.memory_bound`` or its
    ``<SERVICE>_MEMORY_BOUND``) runs one message at a time and stops the same way
    when it is due for replacement, returning :data:`RECYCLE_EXIT_CODE`.
    """
    settings = runtime.settings()
    if spec.settings is not None:
        service_settings: Any = load_object(spec.settings)
        runtime.service_settings(service_settings)
    profile = memory_bound_profile(spec.name, spec.memory_bound)
    configure_logging(log_format=settings.log_format, level=settings.log_level, service=spec.name)
    configure_tracing(spec.name, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    broker = build_broker(settings)
    if spec.actors_module:
        importlib.import_module(spec.actors_module)
    for queue in spec.queues:
        broker.declare_queue(queue)

    stop = stop_on_signals()
    recycling = None
    if profile is not None:
        recycling = Recycling(profile=profile, request_stop=stop.set, retry_delays_ms=settings.retry_delays_ms)
        broker.add_middleware(recycling)
        threads = 1
    worker = dramatiq.Worker(broker, queues=set(spec.queues), worker_threads=threads or spec.threads)
    if profile is not None:
        worker.queue_prefetch = 1  # the message it runs: nothing waits behind it in this process
    liveness: WorkerLiveness = find_middleware(broker, WorkerLiveness)
    liveness.service = spec.name
    health = HealthServer(
        host=settings.health_host,
        port=spec.health_port if health_port is None else health_port,
        liveness=liveness.status,
        readiness=readiness_check(redis_client(settings, socket_timeout=1, socket_connect_timeout=1), runtime.engine()),
        registries=(broker.metrics_registry,),
    ).start()
    relay = OutboxRelay(runtime.engine(), broker)

    # Set-up is done: what is alive now lives as long as the process.
    frozen = heap.freeze()
    logger.debug("Froze %d objects out of the garbage collector's reach.", frozen)
    worker.start()
    relay.start()
    logger.info(
        "Worker %s consuming %s with %d threads; health on port %d.",
        spec.name,
        ", ".join(spec.queues),
        worker.worker_threads,
        health.port,
    )
    stop.wait()
    logger.info("Stopping worker %s (grace %d ms).", spec.name, settings.shutdown_grace_ms)
    relay.stop()
    worker.stop(timeout=settings.shutdown_grace_ms)
    broker.close()
    health.stop()
    logger.info("Worker %s stopped.", spec.name)
    if recycling is not None and recycling.recycle_reason is not None:
        return RECYCLE_EXIT_CODE
    return 0
