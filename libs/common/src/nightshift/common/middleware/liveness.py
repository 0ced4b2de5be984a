"""Heartbeats and prompt recovery of the messages of dead workers.

Dramatiq's Redis broker writes a worker's heartbeat only when it fetches, and
requeues a dead worker's messages only during maintenance that runs on one
command in a thousand. A busy worker whose prefetch is full therefore looks
dead, and a killed worker's messages wait for chance. This middleware runs a
thread per worker process that beats every interval and runs the recovery of
every queue it consumes on a timer, so redelivery after a crash takes about
``heartbeat_timeout`` plus one interval, and nothing else.

The same thread publishes what the dashboards show (read with
:mod:`nightshift.common.workers`): a hash describing the process (service,
host, pid, threads, start, queues, heartbeat) and a hash of the messages it
runs now, both expiring when it stops beating. The running set is kept in
memory per message (a dict operation) and written once per interval, never per
message.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import current_millis, q_name
from dramatiq.middleware import Middleware

from nightshift.common.redis_broker import NightshiftRedisBroker

#: How long a cleanly stopped worker's goodbye (``RedisKeys.stopped``) is kept.
STOPPED_MARK_MS = 3_600_000


class WorkerLiveness(Middleware):
    """Heartbeat and dead-worker recovery on a timer; the source of ``/livez``.

    Parameters:
      interval_ms: How often to beat, recover and publish this process's state.
      service: The service this process works for, as the dashboards show it
        (:func:`~nightshift.common.worker.run_worker` sets it).
    """

    def __init__(self, *, interval_ms: int = 1000, service: str | None = None) -> None:
        self.interval_s = interval_ms / 1000
        self.service = service or "unknown"
        self.last_beat = 0.0
        self.started_at_ms = 0
        #: message id → (actor, queue, started at in ms) of what this process runs now.
        self.running: dict[str, tuple[str, str, int]] = {}
        self._worker: dramatiq.Worker | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, NightshiftRedisBroker):
            return
        self._worker = worker
        self.started_at_ms = current_millis()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(broker,), name="nightshift-liveness", daemon=True)
        self._thread.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if isinstance(broker, NightshiftRedisBroker):
            try:
                broker.client.delete(broker.keys.worker(broker.broker_id), broker.keys.running(broker.broker_id))
                # A goodbye, so that the ops alert on lost workers tells a scale-down from a crash.
                broker.client.set(broker.keys.stopped(broker.broker_id), 1, px=STOPPED_MARK_MS)
            except Exception:
                broker.logger.warning("Could not withdraw this worker's state; it expires.", exc_info=True)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.running[message.message_id] = (message.actor_name, q_name(message.queue_name), current_millis())

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self.running.pop(message.message_id, None)

    after_skip_message = after_process_message

    def _run(self, broker: NightshiftRedisBroker) -> None:
        while not self._stop.is_set():
            try:
                broker.heartbeat()
                for queue in list(self._worker.consumers if self._worker else ()):
                    broker.recover(queue)
                self.publish_state(broker)
                self.last_beat = time.monotonic()
            except Exception:
                broker.logger.warning("Heartbeat or recovery failed; retrying.", exc_info=True)
            self._stop.wait(self.interval_s)

    def publish_state(self, broker: NightshiftRedisBroker) -> None:
        """Write this process's description and running messages, expiring with its heartbeat."""
        worker = self._worker
        now_ms = current_millis()
        ttl_ms = max(int(broker.heartbeat_timeout), int(3000 * self.interval_s))
        queues = sorted(q for q in (worker.consumers if worker else ()) if not q.endswith(".DQ"))
        info = {
            "service": self.service,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "threads": worker.worker_threads if worker else 0,
            "started_at_ms": self.started_at_ms,
            "queues": ",".join(queues),
            "heartbeat_at_ms": now_ms,
        }
        running = {
            message_id: json.dumps({"actor": actor, "queue": queue, "started_at_ms": started})
            for message_id, (actor, queue, started) in list(self.running.items())
        }
        worker_key, running_key = broker.keys.worker(broker.broker_id), broker.keys.running(broker.broker_id)
        with broker.client.pipeline(transaction=True) as pipe:
            pipe.hset(worker_key, mapping=info)  # type: ignore[arg-type]
            pipe.pexpire(worker_key, ttl_ms)
            pipe.delete(running_key)
            if running:
                pipe.hset(running_key, mapping=running)  # type: ignore[arg-type]
                pipe.pexpire(running_key, ttl_ms)
            pipe.execute()

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
