"""The notifications service's shape: the I/O-bound profile (many threads)."""

from __future__ import annotations

from pathlib import Path

from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="notifications",
    lanes=(Lane.CRITICAL, Lane.HIGH, Lane.NORMAL, Lane.LOW),
    settings="nightshift.notifications.settings:NotificationsSettings",
    actors_module="nightshift.notifications.actors",
    schedules_module="nightshift.notifications.schedules",
    migrations_dir=Path(__file__).parent / "migrations",
    threads=16,
    health_port=8102,
    entrypoint="nightshift.notifications.worker:main",
    demo="nightshift.notifications.demo:tick",
    # Locally, webhooks reach the runner's own receiver on loopback; never set in production.
    local_env=(("NOTIFICATIONS_WEBHOOKS_ALLOW_LOOPBACK", "true"),),
)
