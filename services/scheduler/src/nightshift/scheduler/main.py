"""The scheduler process: lease, loop and health, until SIGTERM or SIGINT."""

from __future__ import annotations

import datetime as dt
import logging

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.health import HealthServer, readiness_check
from nightshift.common.logs import configure_logging
from nightshift.common.processes import stop_on_signals
from nightshift.common.redis_ha import redis_client
from nightshift.common.schedules import installed_schedules
from nightshift.common.service import ServiceSpec
from nightshift.common.settings import load_settings
from nightshift.common.tracing import configure_tracing
from nightshift.scheduler.claims import FireClaims
from nightshift.scheduler.lease import LeaderLease
from nightshift.scheduler.loop import Scheduler
from nightshift.scheduler.settings import SchedulerSettings

logger = logging.getLogger(__name__)

#: A leader frozen mid-transaction (SIGSTOP, a VM pause) must not block its successor:
#: PostgreSQL ends such a transaction after a few seconds and releases its row locks, and a
#: write that waits for a lock gives up instead of stalling the loop (the tick retries).
SESSION_SETTINGS = {"idle_in_transaction_session_timeout": "3s", "lock_timeout": "2s"}


def run(spec: ServiceSpec) -> int:
    """Run the scheduler in this process until SIGTERM or SIGINT; return the exit code.

    Any number of these may run: one holds the lease and fires, the others stand by.
    On a signal the lease is released at once, so a standby takes over without
    waiting for it to expire.
    """
    settings = runtime.settings()
    options = load_settings(SchedulerSettings)
    configure_logging(log_format=settings.log_format, level=settings.log_level, service=spec.name)
    configure_tracing(spec.name, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    schedules = installed_schedules(options.extra_schedule_modules)
    broker = build_broker(settings)
    client = redis_client(settings, socket_timeout=2, socket_connect_timeout=2)
    lease = LeaderLease(client, ttl_ms=options.lease_ttl_ms)
    scheduler = Scheduler(
        schedules=schedules,
        lease=lease,
        claims=FireClaims(client, broker),
        session_factory=make_session_factory(
            make_engine(
                settings.database_url,
                pool_size=2,
                application_name="nightshift-scheduler",
                session_settings=SESSION_SETTINGS,
            )
        ),
        default_timezone=settings.timezone,
        reload_interval=dt.timedelta(milliseconds=options.reload_interval_ms),
        tolerance=dt.timedelta(milliseconds=options.misfire_tolerance_ms),
    )
    health = HealthServer(
        host=settings.health_host,
        port=spec.health_port if options.health_port is None else options.health_port,
        liveness=scheduler.liveness,
        readiness=readiness_check(redis_client(settings, socket_timeout=1, socket_connect_timeout=1), runtime.engine()),
        registries=(broker.metrics_registry, scheduler.registry),
        status=scheduler.status,
    ).start()

    stop = stop_on_signals()
    logger.info(
        "Scheduler %s with %d schedules (%s); health on port %d.",
        lease.owner,
        len(schedules),
        ", ".join(schedules) or "none",
        health.port,
    )
    lease.start()
    try:
        scheduler.run(stop)
    finally:
        lease.stop()
        broker.close()
        health.stop()
        logger.info("Scheduler %s stopped.", lease.owner)
    return 0
