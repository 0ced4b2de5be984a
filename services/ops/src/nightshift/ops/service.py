"""The ops service's shape: a web process (dashboard, JSON API, metrics); no queue yet."""

from __future__ import annotations

from pathlib import Path

from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="ops",
    lanes=(),
    settings="nightshift.ops.settings:OpsSettings",
    schedules_module="nightshift.ops.schedules",
    migrations_dir=Path(__file__).parent / "migrations",
    health_port=8120,
    entrypoint="nightshift.ops.worker:main",
    banner="nightshift.ops.local:banner",
)
