"""The memory-bound profile inside a worker process: count, measure, replace, contain.

See :mod:`nightshift.common.memory_bound` for the profile itself. This
middleware runs in each of the profile's processes (one worker thread, one
message at a time) and

- after each message, asks the process to stop (and be replaced by its
  supervisor) once it has run ``max_tasks`` messages or its resident memory
  passed the recycling share of its limit;
- while a message runs, ends the process at once when its memory passes the
  limit or the message outlives its time limit by ``hang_grace_ms`` — a leak or
  a hang inside C code that no exception can interrupt;
- counts, in Redis, the starts of each message that never finished: a message
  whose process died (segfault, memory, hang, SIGKILL) is redelivered by
  :class:`~nightshift.common.middleware.liveness.WorkerLiveness`, and once it
  has killed its process as many times as it has attempts it is dead-lettered
  with :class:`~nightshift.common.errors.ProcessDied` and the last cause,
  instead of taking processes down for ever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, TimeLimit

from nightshift.common.errors import ProcessDied
from nightshift.common.memory_bound import RECYCLE_EXIT_CODE, MemoryBound, resident_memory_bytes
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import DEFAULT_RETRY_DELAYS_MS

logger = logging.getLogger(__name__)

#: How often the watchdog measures the running message's memory and age.
WATCH_INTERVAL_S = 0.05

#: How long a message's crash count is kept (longer than any retry schedule).
CRASH_COUNT_TTL_S = 7 * 24 * 3600


class Recycling(Middleware):
    """Replace the process between messages; end it when a message breaks its limits.

    Parameters:
      profile: The limits.
      request_stop: Called (once) to stop this worker gracefully after a message;
        the worker then exits with :data:`RECYCLE_EXIT_CODE`.
      retry_delays_ms: The default retry schedule (attempts are one more than its length).
      exit: Ends the process at once (``os._exit``); a test may pass another.
    """

    def __init__(
        self,
        *,
        profile: MemoryBound,
        request_stop: Callable[[], None],
        retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS,
        exit: Callable[[int], Any] = os._exit,
    ) -> None:
        self.profile = profile
        self.request_stop = request_stop
        self.retry_delays_ms = retry_delays_ms
        self.exit = exit
        self.tasks = 0
        #: Why the process asked to be replaced (None while it keeps going).
        self.recycle_reason: str | None = None
        self._running: tuple[MessageProxy, float, float] | None = None  # message, started, deadline
        self._broker: NightshiftRedisBroker | None = None
        self._worker: dramatiq.Worker | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if isinstance(broker, NightshiftRedisBroker):
            self._broker = broker
        self._worker = worker
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="nightshift-recycling", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        attempts = self._attempts(broker, message)
        starts = self._count_start(message)
        self._running = (message, time.monotonic(), time.monotonic() + self._time_limit_s(broker, message))
        # Crashed starts are attempts too: with the retries already made, past the allowance?
        if int(message.options.get("retries", 0)) + starts > attempts:
            cause = self._last_cause(message) or "killed, or crashed in native code"
            error = ProcessDied(
                f"the worker process died {starts - 1} times running this message (last cause: {cause})"
            )
            # Dramatiq logs and ignores an exception raised here; a failed message is not
            # run, and its nack dead-letters it with this reason (DeadLetterReasons).
            logger.error("Dead-lettering message %s without running it: %s.", message.message_id, error)
            message.stuff_exception(error)
            message.fail()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._running = None
        self._forget_starts(message)
        self.tasks += 1
        rss = resident_memory_bytes()
        if self.tasks >= self.profile.max_tasks:
            self._recycle(f"ran {self.tasks} messages (max_tasks {self.profile.max_tasks})")
        elif rss >= self.profile.recycle_memory_bytes:
            self._recycle(f"resident memory {rss // 2**20} MB after a message (limit {self.profile.max_memory_mb} MB)")

    after_skip_message = after_process_message

    def _recycle(self, reason: str) -> None:
        if self.recycle_reason is None:
            self.recycle_reason = reason
            logger.info("Replacing this worker process: %s.", reason)
            # Take nothing more: the worker thread ends after this message and the
            # consumers fetch no more; what they hold is requeued when the worker stops.
            if self._worker is not None:
                for thread in self._worker.workers:
                    thread.stop()
                for consumer in self._worker.consumers.values():
                    consumer.pause()
            self.request_stop()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            running = self._running
            if running is None:
                continue
            message, started, deadline = running
            rss = resident_memory_bytes()
            cause = None
            if rss > self.profile.max_memory_bytes:
                cause = f"memory limit: resident {rss // 2**20} MB over {self.profile.max_memory_mb} MB"
            elif time.monotonic() > deadline + self.profile.hang_grace_ms / 1000:
                cause = f"hung: still running {time.monotonic() - started:.0f} s, past its time limit"
            if cause is not None and self._running is running:
                self._die(message, cause)

    def _die(self, message: MessageProxy, cause: str) -> None:
        logger.error("Ending this worker process while it runs message %s: %s.", message.message_id, cause)
        if self._broker is not None:
            try:
                key = self._broker.keys.crashes(message.message_id)
                self._broker.client.hset(key, "cause", cause)
            except Exception:
                logger.warning("Could not record why message %s ends this process.", message.message_id)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self.exit(RECYCLE_EXIT_CODE)

    def _count_start(self, message: MessageProxy) -> int:
        if self._broker is None:
            return 1
        key = self._broker.keys.crashes(message.message_id)
        with self._broker.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "starts", 1)
            pipe.expire(key, CRASH_COUNT_TTL_S)
            starts, _ = pipe.execute()
        return int(starts)

    def _last_cause(self, message: MessageProxy) -> str | None:
        if self._broker is None:
            return None
        cause = self._broker.client.hget(self._broker.keys.crashes(message.message_id), "cause")
        return cause.decode() if cause else None

    def _forget_starts(self, message: MessageProxy) -> None:
        if self._broker is not None:
            self._broker.client.delete(self._broker.keys.crashes(message.message_id))

    def _attempts(self, broker: dramatiq.Broker, message: MessageProxy) -> int:
        """How many times *message* may run: one more than its retries (as ``ScheduledRetries`` counts)."""
        actor = broker.get_actor(message.actor_name)
        schedule = tuple(actor.options.get("retry_delays_ms", self.retry_delays_ms))
        max_retries = message.options.get("max_retries", actor.options.get("max_retries", len(schedule)))
        return int(min(max_retries, len(schedule))) + 1

    def _time_limit_s(self, broker: dramatiq.Broker, message: MessageProxy) -> float:
        default_ms = next((m.time_limit for m in broker.middleware if isinstance(m, TimeLimit)), 600_000)
        actor = broker.get_actor(message.actor_name)
        limit_ms = message.options.get("time_limit") or actor.options.get("time_limit", default_ms)
        return float(limit_ms) / 1000
