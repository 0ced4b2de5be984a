"""Heartbeats and prompt recovery of the messages of dead workers.

Dramatiq's Redis broker writes a worker's heartbeat only when it fetches, and
requeues a dead worker's messages only during maintenance that runs on one
command in a thousand. A busy worker whose prefetch is full therefore looks
dead, and a killed worker's messages wait for chance. This middleware runs a
thread per worker process that beats every interval and runs the recovery of
every queue it consumes on a timer, so redelivery after a crash takes about
``heartbeat_timeout`` plus one interval, and nothing else.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from nightshift.common.redis_broker import NightshiftRedisBroker


class WorkerLiveness(Middleware):
    """Heartbeat and dead-worker recovery on a timer; the source of ``/livez``.

    Parameters:
      interval_ms: How often to beat and recover.
    """

    def __init__(self, *, interval_ms: int = 1000) -> None:
        self.interval_s = interval_ms / 1000
        self.last_beat = 0.0
        self._worker: dramatiq.Worker | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, NightshiftRedisBroker):
            return
        self._worker = worker
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(broker,), name="nightshift-liveness", daemon=True)
        self._thread.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, broker: NightshiftRedisBroker) -> None:
        while not self._stop.is_set():
            try:
                broker.heartbeat()
                for queue in list(self._worker.consumers if self._worker else ()):
                    broker.recover(queue)
                self.last_beat = time.monotonic()
            except Exception:
                broker.logger.warning("Heartbeat or recovery failed; retrying.", exc_info=True)
            self._stop.wait(self.interval_s)

    def status(self) -> tuple[bool, dict[str, Any]]:
        """Whether this process is making progress, and why not."""
        worker = self._worker
        if worker is None:
            return False, {"worker": "not started"}
        consumers = {name: thread.is_alive() for name, thread in worker.consumers.items()}
        threads_alive = sum(thread.is_alive() for thread in worker.workers)
        beat_age = time.monotonic() - self.last_beat
        ok = all(consumers.values()) and threads_alive == len(worker.workers) and beat_age < 5 * self.interval_s + 5
        return ok, {
            "consumers": consumers,
            "worker_threads_alive": threads_alive,
            "worker_threads": len(worker.workers),
            "last_heartbeat_seconds_ago": round(beat_age, 3),
        }
