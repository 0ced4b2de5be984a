"""The ops service's shape: a web process (dashboard, JSON API, metrics, the alert evaluator) and a
worker (alert delivery, raised alerts, maintenance) beside it."""

from __future__ import annotations

from pathlib import Path

from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="ops",
    lanes=(Lane.NORMAL, Lane.LOW),
    settings="nightshift.ops.settings:OpsSettings",
    actors_module="nightshift.ops.actors",
    schedules_module="nightshift.ops.schedules",
    migrations_dir=Path(__file__).parent / "migrations",
    threads=4,
    health_port=8120,
    entrypoint="nightshift.ops.worker:main",
    banner="nightshift.ops.local:banner",
    separate_worker=True,
)
