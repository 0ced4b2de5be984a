"""The posts service's shape: an I/O-bound worker (the work happens in PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(
    name="posts",
    lanes=(Lane.HIGH, Lane.NORMAL, Lane.LOW),
    settings="nightshift.posts.settings:PostsSettings",
    actors_module="nightshift.posts.actors",
    schedules_module="nightshift.posts.schedules",
    migrations_dir=Path(__file__).parent / "migrations",
    threads=8,
    health_port=8104,
    entrypoint="nightshift.posts.worker:main",
    demo="nightshift.posts.demo:tick",
)
