"""Several worker processes for one service: the CPU-bound profile.

One Python process runs one image (or other CPU-heavy job) at a time no matter
how many threads it has, so the CPU-bound profile runs *processes* workers of
one thread each. Each holds at most *prefetch* messages (Dramatiq's
``dramatiq_queue_prefetch``), so no message waits behind another's CPU work in
a busy process while an idle one could take it. This module is the small
supervisor around them: it starts the children, restarts any that die (with a
back-off), and forwards SIGTERM/SIGINT so each child drains gracefully.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType

from nightshift.common.processes import stop_processes
from nightshift.common.service import ServiceSpec

logger = logging.getLogger(__name__)

#: Dramatiq reads each worker's prefetch from this variable when it is imported.
PREFETCH_VARIABLE = "dramatiq_queue_prefetch"

#: Longest wait before restarting a child that keeps dying (0 s, 1 s, 3 s, 7 s … at most this).
MAX_RESTART_DELAY_S = 30.0

#: A child that dies after running this long is restarted at once, its back-off forgotten.
STABLE_AFTER_S = 120.0


@dataclass
class PoolChild:
    """One worker process of the pool."""

    index: int
    health_port: int
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class WorkerPool:
    """Run *processes* workers of *spec*, each with *threads* threads and *prefetch* messages.

    Parameters:
      spec: The service; every child consumes its queues only.
      processes: How many worker processes.
      threads: Threads per process (1 for CPU-bound work).
      prefetch: Messages each process may hold at once.
      health_port: The first child serves health there; the others on a free port
        each, so several pools can share a machine.
      env: The children's environment (this process's by default).
    """

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        processes: int,
        threads: int = 1,
        prefetch: int = 1,
        health_port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if processes < 1 or threads < 1 or prefetch < 1:
            raise ValueError("processes, threads and prefetch must be at least 1")
        self.spec = spec
        self.threads = threads
        self.env = {**(os.environ if env is None else env), PREFETCH_VARIABLE: str(prefetch)}
        first_port = spec.health_port if health_port is None else health_port
        self.children = [PoolChild(index, first_port if index == 0 else 0) for index in range(processes)]

    def _start(self, child: PoolChild) -> None:
        command = [sys.executable, "-m", "nightshift.common.cli", "worker", self.spec.name]
        command += ["--threads", str(self.threads), "--health-port", str(child.health_port)]
        child.process = subprocess.Popen(command, env=self.env)
        child.started_at = time.monotonic()

    def start(self) -> WorkerPool:
        for child in self.children:
            self._start(child)
        logger.info(
            "Worker pool %s: %d processes x %d threads, prefetch %s.",
            self.spec.name,
            len(self.children),
            self.threads,
            self.env[PREFETCH_VARIABLE],
        )
        return self

    def pids(self) -> list[int]:
        return [child.process.pid for child in self.children if child.process is not None and child.alive()]

    def restart_dead(self) -> list[int]:
        """Restart children that exited, each after a back-off that grows with its restarts.

        Returns:
          The indexes of the children restarted now.
        """
        restarted = []
        for child in self.children:
            if child.alive():
                continue
            running_for = time.monotonic() - child.started_at
            if running_for > STABLE_AFTER_S:
                child.restarts = 0  # it had been fine for a while: not a crash loop
            delay = min(2.0**child.restarts - 1, MAX_RESTART_DELAY_S)
            if running_for < delay:
                continue
            code = child.process.returncode if child.process is not None else None
            logger.warning("Worker %s #%d exited with %s; restarting.", self.spec.name, child.index, code)
            child.restarts += 1
            self._start(child)
            restarted.append(child.index)
        return restarted

    def stop(self, *, timeout_s: float) -> None:
        """Ask every child to stop (SIGTERM), then kill those still running after *timeout_s*."""
        running = [child.process for child in self.children if child.process is not None]
        for process in stop_processes(running, grace_s=timeout_s):
            logger.error("Worker %s (pid %d) did not stop in time; killed.", self.spec.name, process.pid)


def run_worker_pool(
    spec: ServiceSpec,
    *,
    processes: int | None = None,
    threads: int | None = None,
    prefetch: int = 1,
    health_port: int | None = None,
    check_interval_s: float = 0.5,
) -> int:
    """Supervise a :class:`WorkerPool` of *spec* until SIGTERM or SIGINT; return 0.

    On a signal every child gets SIGTERM and the grace period (``SHUTDOWN_GRACE_MS``)
    plus a few seconds to finish its in-flight message.
    """
    from nightshift.common import runtime  # settings are read here, not at import

    grace_s = runtime.settings().shutdown_grace_ms / 1000 + 5
    pool = WorkerPool(
        spec,
        processes=processes or spec.processes,
        threads=threads or spec.threads,
        prefetch=prefetch,
        health_port=health_port,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pool.start()
    while not stop.wait(check_interval_s):
        pool.restart_dead()
    logger.info("Stopping worker pool %s.", spec.name)
    pool.stop(timeout_s=grace_s)
    return 0
