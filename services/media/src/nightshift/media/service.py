"""The media service's shape: the CPU-bound profile (processes, one thread each, prefetch 1)."""

from __future__ import annotations

import os
from pathlib import Path

from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="media",
    lanes=(Lane.HIGH, Lane.LOW),
    settings="nightshift.media.settings:MediaSettings",
    actors_module="nightshift.media.actors",
    schedules_module="nightshift.media.schedules",
    migrations_dir=Path(__file__).parent / "migrations",
    threads=1,
    processes=max(1, os.cpu_count() or 2),
    health_port=8103,
    entrypoint="nightshift.media.worker:main",
    demo="nightshift.media.demo:tick",
)
