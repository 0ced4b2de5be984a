"""The users service's shape: a worker of 8 threads."""

from __future__ import annotations

from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="users",
    lanes=(Lane.HIGH, Lane.NORMAL, Lane.LOW),
    settings="nightshift.users.settings:UsersSettings",
    actors_module="nightshift.users.actors",
    schedules_module="nightshift.users.schedules",
    threads=8,
    health_port=8101,
    entrypoint="nightshift.users.worker:main",
    demo="nightshift.users.demo:tick",
)
