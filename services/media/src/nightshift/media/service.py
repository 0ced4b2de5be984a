"""The media service's shape: the CPU-bound profile (processes, one thread each)."""

from __future__ import annotations

import os

from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="media",
    lanes=(Lane.HIGH, Lane.LOW),
    actors_module="nightshift.media.actors",
    threads=1,
    processes=max(1, (os.cpu_count() or 2)),
    health_port=8103,
)
