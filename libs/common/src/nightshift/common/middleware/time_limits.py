"""Stop a job that runs past its time limit, and say so in its record and dead letter."""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from dramatiq.middleware.threading import raise_thread_exception
from dramatiq.middleware.time_limit import TimeLimitExceeded

logger = logging.getLogger(__name__)


class TimedOut(TimeLimitExceeded):
    """Raised in a job's thread when it runs past its time limit.

    A subclass per limit carries the limit (an asynchronous exception is raised
    from its class, so it cannot carry arguments), so the record and the dead
    letter read ``TimedOut: stopped after its time limit of 600 s``. Like Dramatiq's
    ``TimeLimitExceeded`` (its base) it is an interrupt: ``except Exception`` in an
    actor does not swallow it, and a blocking system call finishes first.
    """

    #: The limit that was exceeded, in milliseconds.
    limit_ms: float = 0

    def __str__(self) -> str:
        return f"stopped after its time limit of {self.limit_ms / 1000:g} s"


@functools.cache
def timed_out(limit_ms: float) -> type[TimedOut]:
    """The :class:`TimedOut` subclass raised for a limit of *limit_ms*."""
    return type("TimedOut", (TimedOut,), {"limit_ms": limit_ms, "__module__": __name__})


class TimeLimits(Middleware):
    """A time limit per job: the actor's ``time_limit`` option (ms), else the global default.

    Dramatiq's ``TimeLimit`` does the same but raises an exception that says
    nothing of the limit, and retries its job like any failure. Here a job past its
    limit is interrupted with :class:`TimedOut` and goes to the dead letters at
    once (``ScheduledRetries`` treats it as permanent): running it again would
    most likely time out again. An operator can replay it.

    Parameters:
      time_limit_ms: The default limit (``TASK_TIME_LIMIT_MS``).
      interval_ms: How often running jobs are checked against their deadlines.
    """

    def __init__(self, *, time_limit_ms: float = 600_000, interval_ms: int = 1000) -> None:
        self.time_limit_ms = time_limit_ms
        self.interval_s = interval_ms / 1000
        #: thread id → (deadline on the monotonic clock, limit in ms) of the job it runs.
        self._deadlines: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def actor_options(self) -> set[str]:
        return {"time_limit"}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        actor = broker.get_actor(message.actor_name)
        limit = message.options.get("time_limit") or actor.options.get("time_limit") or self.time_limit_ms
        with self._lock:
            if self._thread is None:  # started with the first job: in-process workers emit no process boot
                self._thread = threading.Thread(target=self._watch, name="nightshift-time-limits", daemon=True)
                self._thread.start()
            self._deadlines[threading.get_ident()] = (time.monotonic() + limit / 1000, float(limit))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._deadlines.pop(threading.get_ident(), None)

    after_skip_message = after_process_message

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval_s)
            now = time.monotonic()
            with self._lock:
                expired = [(tid, limit) for tid, (deadline, limit) in self._deadlines.items() if now >= deadline]
                for thread_id, _ in expired:
                    del self._deadlines[thread_id]
            for thread_id, limit in expired:
                logger.warning("A job ran past its time limit of %g ms; stopping it (thread %d).", limit, thread_id)
                raise_thread_exception(thread_id, timed_out(limit))  # type: ignore[no-untyped-call]
