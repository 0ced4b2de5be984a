"""Several worker processes for one service: the CPU-bound and memory-bound profiles.

One Python process runs one image (or other CPU-heavy job) at a time no matter
how many threads it has, so the CPU-bound profile runs *processes* workers of
one thread each. Each holds at most *prefetch* messages (Dramatiq's
``dramatiq_queue_prefetch``), so no message waits behind another's CPU work in
a busy process while an idle one could take it. This module is the small
supervisor around them: it starts the children, restarts any that die (with a
back-off), and forwards SIGTERM/SIGINT so each child drains gracefully. The
memory-bound profile (:mod:`nightshift.common.memory_bound`) is the same pool
whose children replace themselves between messages: they exit with
``RECYCLE_EXIT_CODE`` and are restarted at once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

from nightshift.common.memory_bound import RECYCLE_EXIT_CODE
from nightshift.common.processes import stop_on_signals
from nightshift.common.service import ServiceSpec
from nightshift.common.supervision import SupervisedChild, restart_dead, stop_children

logger = logging.getLogger(__name__)

#: Dramatiq reads each worker's prefetch from this variable when it is imported.
PREFETCH_VARIABLE = "dramatiq_queue_prefetch"


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
      command: The program a child runs, before ``--threads`` and ``--health-port``
        (``nightshift worker <service>`` by default).
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
        command: Sequence[str] | None = None,
    ) -> None:
        if processes < 1 or threads < 1 or prefetch < 1:
            raise ValueError("processes, threads and prefetch must be at least 1")
        self.spec = spec
        self.threads = threads
        self.base_command = list(command or [sys.executable, "-m", "nightshift.common.cli", "worker", spec.name])
        self.env = {**(os.environ if env is None else env), PREFETCH_VARIABLE: str(prefetch)}
        first_port = spec.health_port if health_port is None else health_port
        self.children = [
            SupervisedChild(f"{spec.name} #{index}", self._command(first_port if index == 0 else 0), self.env)
            for index in range(processes)
        ]

    def _command(self, health_port: int) -> list[str]:
        return [*self.base_command, "--threads", str(self.threads), "--health-port", str(health_port)]

    def start(self) -> WorkerPool:
        for child in self.children:
            child.start()
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
        for child, code in restart_dead(self.children):
            if code == RECYCLE_EXIT_CODE:
                logger.info("Worker %s replaced (memory-bound profile).", child.name)
            else:
                logger.warning("Worker %s exited with %s; restarted.", child.name, code)
            restarted.append(self.children.index(child))
        return restarted

    def stop(self, *, timeout_s: float) -> None:
        """Ask every child to stop (SIGTERM), then kill those still running after *timeout_s*."""
        for child in stop_children(self.children, grace_s=timeout_s):
            pid = child.process.pid if child.process is not None else None
            logger.error("Worker %s (pid %s) did not stop in time; killed.", child.name, pid)


def run_worker_pool(
    spec: ServiceSpec,
    *,
    processes: int | None = None,
    threads: int | None = None,
    prefetch: int = 1,
    health_port: int | None = None,
    check_interval_s: float = 0.5,
    command: Sequence[str] | None = None,
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
        command=command,
    )
    stop = stop_on_signals()
    pool.start()
    while not stop.wait(check_interval_s):
        pool.restart_dead()
    logger.info("Stopping worker pool %s.", spec.name)
    pool.stop(timeout_s=grace_s)
    return 0
