"""The scheduler service's shape: it consumes no queue; it only enqueues."""

from __future__ import annotations

from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="scheduler",
    lanes=(),
    settings="nightshift.scheduler.settings:SchedulerSettings",
    schedules_module="nightshift.scheduler.schedules",
    health_port=8110,
    entrypoint="nightshift.scheduler.worker:main",
)
