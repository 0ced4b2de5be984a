"""The actors' side: report progress cheaply, attach a small result, stop at safe points.

Inside an actor::

    from nightshift.common import jobs

    for done, batch in enumerate(batches, 1):
        jobs.check_abort()                      # a safe point: stop here if revoked
        handle(batch)
        jobs.report_progress(done, total=len(batches), note="copying")
    jobs.set_result({"key": key, "rows": rows})

A report costs a clock read; at most one in :data:`MIN_INTERVAL_S` (and the last
one, ``done == total``) reaches Redis, as one pipelined round trip, and never the
database: the last progress and the result are copied to PostgreSQL once, when the
job ends (the :class:`~nightshift.common.middleware.job_progress.JobProgress`
middleware). Outside a Dramatiq message (a logic function called from a test or the
CLI) reports go nowhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dramatiq.middleware import CurrentMessage

from nightshift.common.jobs import store
from nightshift.common.records import attempt_number

if TYPE_CHECKING:
    import redis

#: At most one progress report per job reaches Redis in this many seconds.
MIN_INTERVAL_S = 0.5


class ProgressReporter:
    """One job's reports, throttled.

    Parameters:
      job_id: The job (Dramatiq message id).
      client: The application Redis.
      attempt: Which attempt of the job is reporting (carried by every event).
      min_interval_s: Least time between two reports written to Redis.
    """

    def __init__(
        self, job_id: str, client: redis.Redis[bytes], *, attempt: int = 1, min_interval_s: float = MIN_INTERVAL_S
    ) -> None:
        self.job_id = job_id
        self.client = client
        self.attempt = attempt
        self.min_interval_s = min_interval_s
        self.last: store.Progress | None = None
        self.result: str | None = None
        self._written: store.Progress | None = None
        self._written_at = float("-inf")

    def report(self, done: int, total: int | None = None, note: str | None = None, *, force: bool = False) -> None:
        """Record that *done* of *total* units are done; written now unless one was written very recently.

        Raises:
          ValueError: When *done* is negative or *total* smaller than *done*.
        """
        if done < 0 or (total is not None and total < done):
            raise ValueError(f"progress must be 0 <= done <= total, got done={done}, total={total}")
        self.last = store.Progress(done, total, note)
        now = time.monotonic()
        final = total is not None and done == total
        if force or final or now - self._written_at >= self.min_interval_s:
            self.flush(now=now)

    def flush(self, *, now: float | None = None) -> None:
        """Write the latest report if it was not written yet."""
        if self.last is None or self.last is self._written:
            return
        progress = store.Progress(self.last.done, self.last.total, self.last.note, store.now())
        store.write_progress(self.client, self.job_id, progress, attempt=self.attempt)
        self.last = self._written = progress
        self._written_at = time.monotonic() if now is None else now

    def set_result(self, result: Mapping[str, Any]) -> None:
        """Attach *result* to the job (replacing an earlier one); written at once.

        Raises:
          ValueError: When it is not JSON or over :data:`~nightshift.common.jobs.store.RESULT_MAX_BYTES`.
        """
        encoded = store.encode_result(result)
        self.flush()
        store.write_result(self.client, self.job_id, encoded)
        self.result = encoded


#: The reporters of the messages running in this process, by message id.
_reporters: dict[str, ProgressReporter] = {}
_lock = threading.Lock()


def reporter(client: redis.Redis[bytes] | None = None) -> ProgressReporter | None:
    """The current message's reporter (made on first use); None outside a message.

    Parameters:
      client: The Redis to write to; the process's application Redis by default.
    """
    message = CurrentMessage.get_current_message()
    if message is None:
        return None
    with _lock:
        found = _reporters.get(message.message_id)
        if found is None:
            if client is None:
                from nightshift.common import runtime

                client = runtime.app_redis()
            found = ProgressReporter(message.message_id, client, attempt=attempt_number(message.options))
            _reporters[message.message_id] = found
        return found


def report_progress(done: int, total: int | None = None, note: str | None = None) -> None:
    """Report the current job's progress (throttled; nothing outside a message).

    Parameters:
      done: Units done so far (rows, items, bytes…).
      total: Units in all, when known.
      note: A short word on what is happening ("uploading part 3").

    Raises:
      ValueError: When *done* is negative or more than *total*.
    """
    current = reporter()
    if current is not None:
        current.report(done, total, note)


def set_result(result: Mapping[str, Any]) -> None:
    """Attach a small JSON *result* to the current job (nothing outside a message).

    Raises:
      ValueError: When it is not JSON or larger than 16 KiB.
    """
    current = reporter()
    if current is not None:
        current.set_result(result)


def release(message_id: str) -> ProgressReporter | None:
    """Forget message *message_id*'s reporter and return it (None if it never reported)."""
    with _lock:
        return _reporters.pop(message_id, None)
