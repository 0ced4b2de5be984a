"""Scheduler processes for end-to-end tests: start them, find the active one, read its status."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from subprocess import Popen
from typing import Any

import redis

from nightshift.common.processes import free_port
from nightshift.scheduler.lease import LEASE_KEY
from tests.support.processes import service_process

#: Settings of test schedulers: a short lease so failover is quick, frequent reloads.
TEST_SCHEDULER_ENV = {
    "SCHEDULER_EXTRA_SCHEDULES": "tests.support.scheduler_schedules",
    "SCHEDULER_LEASE_TTL_MS": "3000",
    "SCHEDULER_RELOAD_INTERVAL_MS": "200",
    "SCHEDULER_MISFIRE_TOLERANCE_MS": "500",
}


@contextmanager
def scheduler_processes(
    count: int, logs: Path, prefix: str = "scheduler", env: Mapping[str, str] | None = None
) -> Iterator[dict[int, tuple[Popen[bytes], int]]]:
    """Start *count* ``python -m nightshift.scheduler``; yield {pid: (process, health port)}; SIGTERM them on exit.

    Parameters:
      env: Settings added to (or overriding) :data:`TEST_SCHEDULER_ENV`.
    """
    with ExitStack() as stack:
        started = {}
        for index in range(count):
            port = free_port()
            process = stack.enter_context(
                service_process(
                    ["-m", "nightshift.scheduler"],
                    logs / f"{prefix}-{index}.log",
                    {**TEST_SCHEDULER_ENV, **(env or {}), "SCHEDULER_HEALTH_PORT": str(port)},
                )
            )
            started[process.pid] = (process, port)
        yield started


def lease_holder_pid(client: redis.Redis[bytes]) -> int | None:
    """The pid of the process holding the lease (owners are ``host:pid:random``)."""
    value = client.get(LEASE_KEY)
    if value is None:
        return None
    owner = value.decode().rpartition("|")[0]
    return int(owner.split(":")[1])


def probe(port: int, path: str) -> int:
    """The HTTP status code of a scheduler's health *path* (``/livez``, ``/readyz``)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def status(port: int) -> dict[str, Any] | None:
    """A scheduler's ``/status`` (None while it is not serving yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
            result: dict[str, Any] = json.load(response)
            return result
    except OSError:
        return None
