"""The scheduler service's shape: it consumes no queue; it only enqueues."""

from __future__ import annotations

from pathlib import Path

from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="scheduler",
    lanes=(),
    settings="nightshift.scheduler.settings:SchedulerSettings",
    schedules_module="nightshift.scheduler.schedules",
    migrations_dir=Path(__file__).parent / "migrations",
    health_port=8110,
    entrypoint="nightshift.scheduler.worker:main",
)
