"""Job records and audit entries for every message, off the hot path."""

from __future__ import annotations

import datetime as dt
import time
import traceback
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from nightshift.common.middleware.tracing import TRACE_OPTION
from nightshift.common.records import AuditEntry, JobEvent, RecordWriter, attempt_number
from nightshift.common.revocation import REVOKED_OPTION, TERMINATED_REASON, Terminated

#: How many characters of an error are kept on the record.
ERROR_MAX_CHARS = 2000
#: How many characters of a traceback are kept on the record (its end, where the error is).
TRACEBACK_MAX_CHARS = 8000


_UTC = dt.UTC
_datetime_now = dt.datetime.now


def _now() -> dt.datetime:
    return _datetime_now(_UTC)


def _event(
    message: dramatiq.Message[Any] | MessageProxy,
    status: str,
    at: dt.datetime,
    attempts: int,
    *,
    args: dict[str, Any] | None = None,
    enqueued_at: dt.datetime | None = None,
    started_at: dt.datetime | None = None,
    finished_at: dt.datetime | None = None,
    error: str | None = None,
    traceback: str | None = None,
) -> JobEvent:
    # Positional: a frozen dataclass's keyword construction costs more, and this runs
    # two or three times per message.
    return JobEvent(
        message.message_id,
        message.actor_name,
        q_name(message.queue_name),
        status,
        at,
        attempts,
        args,
        message.options.get("trigger"),
        enqueued_at,
        started_at,
        finished_at,
        error,
        trace_id(message.options),
        traceback,
    )


def trace_id(options: dict[str, Any]) -> str | None:
    """The trace id (32 hex digits) of the W3C ``traceparent`` a message carries, if any."""
    context = options.get(TRACE_OPTION)
    parent = context.get("traceparent") if context else None
    if not isinstance(parent, str):
        return None
    parts = parent.split("-")
    return parts[1] if len(parts) >= 4 and len(parts[1]) == 32 else None


def describe_traceback(error: BaseException | None) -> str | None:
    """The formatted traceback of *error* (its last ``TRACEBACK_MAX_CHARS`` characters)."""
    if error is None:
        return None
    return "".join(traceback.format_exception(error))[-TRACEBACK_MAX_CHARS:]


def describe_error(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return f"{type(error).__name__}: {error}"[:ERROR_MAX_CHARS]


class JobRecords(Middleware):
    """Record each message's status (queued, running, retrying, done, dead, revoked) and each attempt.

    Must come before :class:`ScheduledRetries` in the stack: after-hooks run in
    reverse order, so this one then sees whether the message was failed.

    Every event carries its attempt number, which orders it in the record
    (:func:`~nightshift.common.records.progress`): a "queued" carries the attempts
    made before it (0, or those of a replayed dead letter's earlier life).

    Parameters:
      writer: The buffered writer the records go to.
    """

    def __init__(self, *, writer: RecordWriter) -> None:
        self.writer = writer
        # Single dict operations are atomic: no lock between the worker threads.
        self._started: dict[str, tuple[float, dt.datetime, int]] = {}
        #: Attempt numbers of failed messages, until their nack.
        self._failed: dict[str, int] = {}

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        if message.options.get("retries"):
            return  # a retry being scheduled: after_process_message already said "retrying"
        now = _now()
        made = attempt_number(message.options) - 1
        self.writer.job(_event(message, "queued", now, made, args=dict(message.kwargs), enqueued_at=now))

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        attempt = attempt_number(message.options)
        now = _now()
        self._started[message.message_id] = (time.perf_counter(), now, attempt)
        self.writer.job(_event(message, "running", now, attempt, args=dict(message.kwargs), started_at=now))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if isinstance(exception, Terminated) or REVOKED_OPTION in message.options:
            self._finish(message, "revoked", message.options.get(REVOKED_OPTION, TERMINATED_REASON))
            return
        status = "done" if exception is None else "dead" if message.failed else "retrying"
        self._finish(message, status, describe_error(exception), describe_traceback(exception))

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if REVOKED_OPTION in message.options:
            self._finish(message, "revoked", message.options[REVOKED_OPTION])
            return
        self._finish(message, "skipped", None)

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        # Every dead message passes here; for an unknown actor it is the only record.
        attempt = self._failed.pop(message.message_id, None)
        if attempt is None:  # never processed here: the attempts made before this one
            attempt = attempt_number(message.options) - 1
        now = _now()
        error = describe_error(message._exception)
        trace = describe_traceback(message._exception)
        self.writer.job(_event(message, "dead", now, attempt, finished_at=now, error=error, traceback=trace))

    def _finish(self, message: MessageProxy, status: str, error: str | None, trace: str | None = None) -> None:
        now = _now()
        started = self._started.pop(message.message_id, None)
        began, started_at, attempt = started or (time.perf_counter(), now, attempt_number(message.options))
        if message.failed:
            self._failed[message.message_id] = attempt
        duration_ms = (time.perf_counter() - began) * 1000
        finished_at = None if status == "retrying" else now
        event = _event(message, status, now, attempt, finished_at=finished_at, error=error, traceback=trace)
        self.writer.job(event)
        self.writer.audit(
            AuditEntry(
                event.message_id,
                event.actor,
                event.queue,
                event.trigger,
                attempt,
                status,
                started_at,
                now,
                duration_ms,
                error,
            )
        )

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.writer.close()
