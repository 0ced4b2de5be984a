"""Job records and the audit trail, buffered off the hot path and written in batches.

Middleware hooks only append to an in-memory buffer; a background thread writes
each batch with one ``INSERT … SELECT FROM json_to_recordset(…)`` per table.
Several events about one message in a batch are merged first (an upsert cannot
touch a row twice). The buffer is flushed on interpreter exit and on worker
shutdown, so a clean stop loses nothing; while PostgreSQL is down batches are
kept (up to ``max_buffered`` in memory, then spilled to disk or, without a spill
folder, by making whoever records wait: :mod:`nightshift.common.records_spill`)
and written when it returns.

A publisher and workers write about the same messages concurrently, so events
reach the database in any order: a record's status only moves forward (see
:func:`progress`), and each batch locks its rows in message id order, so two
writers cannot deadlock.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

if TYPE_CHECKING:
    from nightshift.common.records_spill import RecordSpill

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobEvent:
    """Something that happened to a message; merged into its job record."""

    message_id: str
    actor: str
    queue: str
    status: str
    at: dt.datetime
    attempts: int = 0
    args: dict[str, Any] | None = None
    trigger: str | None = None
    enqueued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    trace_id: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One execution attempt."""

    message_id: str
    actor: str
    queue: str
    trigger: str | None
    attempt: int
    outcome: str
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_ms: float
    error: str | None = None


#: Where each status stands within one attempt: queued, then running, then how the
#: attempt ended. ``dead`` comes after done and skipped because a message failed by a
#: middleware after it was done or skipped is dead-lettered (the nack comes after the
#: outcome). ``revoked`` and ``purged`` are last: an operator's decision that nothing of the
#: same attempt undoes (a revoked message is acked, so no nack follows it; a purged one was
#: ready, so no worker holds it).
STATUS_RANK = {
    "queued": 0,
    "running": 1,
    "retrying": 2,
    "done": 3,
    "skipped": 4,
    "dead": 5,
    "revoked": 6,
    "purged": 7,
}

#: Message option: the attempts made before the message was replayed from the dead
#: letters, so a replay's attempts continue the count and its record moves on again.
PRIOR_ATTEMPTS = "prior_attempts"


def attempt_number(options: Mapping[str, Any]) -> int:
    """Which attempt a message with *options* is on (1 for its first run).

    Dramatiq counts retries in the ``retries`` option; a replayed dead letter adds
    the attempts of its earlier life (:data:`PRIOR_ATTEMPTS`).
    """
    return int(options.get(PRIOR_ATTEMPTS, 0)) + int(options.get("retries", 0)) + 1


def progress(event: JobEvent) -> tuple[int, int, dt.datetime]:
    """How far along its job *event* is: by attempt, then status, then time.

    A record keeps the status of the furthest event, so a late "queued" (attempt 0)
    or a late "running" of an attempt that has since ended changes nothing, while the
    next attempt's "running" moves a "retrying" record on. done, skipped, dead and
    revoked are final: only a later attempt (a redelivery that ran again, a replay) passes them.
    """
    return event.attempts, STATUS_RANK.get(event.status, -1), event.at


def merge(old: JobEvent, new: JobEvent) -> JobEvent:
    """Combine two events about one message the way the upsert does, whatever their order.

    Status comes from the event furthest along (:func:`progress`); the first enqueue
    is the earliest one, the start and finish the latest ones; an error is kept until
    one further along replaces it.
    """
    # progress() inlined: this runs for most messages (a "running" and its outcome
    # usually meet in one batch).
    rank = STATUS_RANK.get
    if (new.attempts, rank(new.status, -1), new.at) >= (old.attempts, rank(old.status, -1), old.at):
        first, last = old, new
    else:
        first, last = new, old
    return JobEvent(
        last.message_id,
        last.actor,
        last.queue,
        last.status,
        old.at if old.at > new.at else new.at,
        old.attempts if old.attempts > new.attempts else new.attempts,
        last.args or first.args,
        first.trigger or last.trigger,
        _earliest(old.enqueued_at, new.enqueued_at),
        _latest(old.started_at, new.started_at),
        _latest(old.finished_at, new.finished_at),
        last.error or first.error,
        first.trace_id or last.trace_id,
        last.traceback if last.error else (last.traceback or first.traceback),
    )


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def _rank_sql(status: str) -> str:
    """:data:`STATUS_RANK` of the *status* column, in SQL."""
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in STATUS_RANK.items())
    return f"CASE {status} {whens} ELSE -1 END"


#: Whether the incoming row is at least as far along as the stored one: :func:`progress`
#: in SQL. The stored attempts are those of its furthest event (attempts come first in
#: the order, so the furthest event has the most) and its time is the latest seen, as
#: :func:`merge` keeps them.
_AHEAD = (
    f"(EXCLUDED.attempts, {_rank_sql('EXCLUDED.status')}, EXCLUDED.updated_at)"
    f" >= (j.attempts, {_rank_sql('j.status')}, j.updated_at)"
)

#: Each batch travels as one JSON document per table, each row an array in the order
#: of :data:`_JOB_FIELDS` / :data:`_AUDIT_FIELDS`, times as seconds since the epoch:
#: ``json.dumps`` then runs in C without calling back into Python (no datetime, no
#: key repeated per row). Adapting a dozen Python lists to PostgreSQL arrays instead
#: costs about three times as much CPU, on the worker's GIL.
#: Rows are inserted, so locked, in message id order: two writers whose batches share
#: messages wait for each other instead of deadlocking.
_UPSERT_JOBS = f"""
INSERT INTO job_records AS j (message_id, actor, queue, status, attempts, args, trigger,
                              enqueued_at, started_at, finished_at, updated_at, last_error,
                              trace_id, traceback)
SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, (r->>5)::int,
       CASE WHEN json_typeof(r->6) = 'object' THEN (r->6)::jsonb ELSE '{{}}'::jsonb END, r->>7,
       to_timestamp((r->>8)::float8), to_timestamp((r->>9)::float8), to_timestamp((r->>10)::float8),
       to_timestamp((r->>4)::float8), r->>11, r->>12, r->>13
FROM json_array_elements(%s::json) AS r
ORDER BY 1
ON CONFLICT (message_id) DO UPDATE SET
    status = CASE WHEN {_AHEAD} THEN EXCLUDED.status ELSE j.status END,
    attempts = GREATEST(j.attempts, EXCLUDED.attempts),
    args = CASE WHEN j.args = '{{}}'::jsonb THEN EXCLUDED.args ELSE j.args END,
    trigger = COALESCE(j.trigger, EXCLUDED.trigger),
    enqueued_at = LEAST(j.enqueued_at, EXCLUDED.enqueued_at),
    started_at = GREATEST(j.started_at, EXCLUDED.started_at),
    finished_at = GREATEST(j.finished_at, EXCLUDED.finished_at),
    last_error = CASE WHEN {_AHEAD}
                      THEN COALESCE(EXCLUDED.last_error, j.last_error)
                      ELSE COALESCE(j.last_error, EXCLUDED.last_error) END,
    traceback = CASE WHEN {_AHEAD}
                     THEN COALESCE(EXCLUDED.traceback, j.traceback)
                     ELSE COALESCE(j.traceback, EXCLUDED.traceback) END,
    trace_id = COALESCE(j.trace_id, EXCLUDED.trace_id),
    updated_at = GREATEST(j.updated_at, EXCLUDED.updated_at)
"""  # noqa: S608 - built from constants only; the rows are one bound parameter

_INSERT_AUDIT = """
INSERT INTO task_audit (message_id, actor, queue, trigger, attempt, outcome,
                        started_at, finished_at, duration_ms, error)
SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, (r->>4)::int, r->>5,
       to_timestamp((r->>6)::float8), to_timestamp((r->>7)::float8), (r->>8)::float8, r->>9
FROM json_array_elements(%s::json) AS r
"""


def _jobs_json(events: Iterable[JobEvent]) -> str:
    """Job events as one JSON array of arrays (fields in :class:`JobEvent` order)."""
    return json.dumps(
        [
            (
                e.message_id,
                e.actor,
                e.queue,
                e.status,
                _epoch(e.at),
                e.attempts,
                e.args,
                e.trigger,
                _epoch(e.enqueued_at),
                _epoch(e.started_at),
                _epoch(e.finished_at),
                e.error,
                e.trace_id,
                e.traceback,
            )
            for e in events
        ]
    )


def _audit_json(entries: Iterable[AuditEntry]) -> str:
    """Audit entries as one JSON array of arrays (fields in :class:`AuditEntry` order)."""
    return json.dumps(
        [
            (
                a.message_id,
                a.actor,
                a.queue,
                a.trigger,
                a.attempt,
                a.outcome,
                _epoch(a.started_at),
                _epoch(a.finished_at),
                a.duration_ms,
                a.error,
            )
            for a in entries
        ]
    )


def _epoch(value: dt.datetime | None) -> float | None:
    """Seconds since the epoch; a naive datetime is taken as UTC, as PostgreSQL would."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


class RecordWriter:
    """Buffers job events and audit entries and writes them in batches.

    Parameters:
      engine: Where to write.
      flush_interval_ms: How long an event may wait in memory.
      max_buffered: Beyond this many unwritten items (PostgreSQL down for long), the
        oldest go to *spill*; without one, :meth:`job` and :meth:`audit` wait for room.
      spill: Where records beyond *max_buffered* wait on disk.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        flush_interval_ms: int = 200,
        max_buffered: int = 200_000,
        spill: RecordSpill | None = None,
    ) -> None:
        self.engine = engine
        self.spill = spill
        #: Notified when a flush made room (the back-pressure of :meth:`job`).
        self._room = threading.Condition()
        self.interval_s = flush_interval_ms / 1000
        self.max_buffered = max_buffered
        self._jobs: deque[JobEvent] = deque()
        self._audit: deque[AuditEntry] = deque()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def job(self, event: JobEvent) -> None:
        self._jobs.append(event)
        self._ensure_started()
        self._wait_for_room()

    def audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry)
        self._ensure_started()
        self._wait_for_room()

    def _wait_for_room(self) -> None:
        """Back-pressure without a spill folder: block while the buffer is full."""
        if self.spill is not None or not self._full() or self._stopped.is_set():
            return
        if threading.current_thread() is self._thread:
            return
        logger.warning("Job records buffer full (%d); waiting for PostgreSQL.", self.pending())
        with self._room:
            self._room.wait_for(lambda: not self._full() or self._stopped.is_set())

    def _full(self) -> bool:
        return len(self._jobs) > self.max_buffered or len(self._audit) > self.max_buffered

    def pending(self) -> int:
        return len(self._jobs) + len(self._audit)

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._flush_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="nightshift-records", daemon=True)
                    self._thread.start()
                    atexit.register(self.close)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                logger.warning("Writing job records failed; keeping them for the next try.", exc_info=True)
                self._stopped.wait(1.0)

    def flush(self) -> int:
        """Write everything buffered now; return how many items were written.

        Raises:
          sqlalchemy.exc.SQLAlchemyError: When PostgreSQL refuses; the items stay buffered.
        """
        with self._flush_lock:
            jobs = _drain(self._jobs)
            audit = _drain(self._audit)
            if not jobs and not audit:
                return 0
            try:
                self._write(jobs, audit)
            except Exception:
                self._jobs.extendleft(reversed(jobs))
                self._audit.extendleft(reversed(audit))
                self._trim()
                raise
            with self._room:
                self._room.notify_all()
            return len(jobs) + len(audit) + self._write_spilled()

    def _write_spilled(self) -> int:
        """Write back what was spilled to disk (PostgreSQL is answering again)."""
        return self.spill.replay(self._write) if self.spill is not None else 0

    def close(self) -> None:
        """Flush what is left and stop the background thread."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:
            logger.error("Could not write %d job records at shutdown.", self.pending(), exc_info=True)

    def _trim(self) -> None:
        """Move the oldest records beyond ``max_buffered`` to the spill folder (none is dropped)."""
        if self.spill is None:
            return  # bounded by the back-pressure of job() and audit()
        jobs = [self._jobs.popleft() for _ in range(len(self._jobs) - self.max_buffered)]
        audit = [self._audit.popleft() for _ in range(len(self._audit) - self.max_buffered)]
        if jobs or audit:
            try:
                self.spill.write(jobs, audit)
            except OSError:
                logger.error("Cannot spill job records to %s; keeping them.", self.spill.directory, exc_info=True)
                self._jobs.extendleft(reversed(jobs))
                self._audit.extendleft(reversed(audit))

    def _write(self, jobs: list[JobEvent], audit: list[AuditEntry]) -> None:
        write(self.engine, jobs, audit)


def write(engine: Engine, jobs: Iterable[JobEvent], audit: Iterable[AuditEntry] = ()) -> None:
    """Merge *jobs* into their records and insert *audit* in one transaction, now (what a flush does)."""
    merged: dict[str, JobEvent] = {}
    for event in jobs:
        previous = merged.get(event.message_id)
        merged[event.message_id] = event if previous is None else merge(previous, event)
    entries = list(audit)
    with engine.begin() as connection:
        if merged:
            connection.exec_driver_sql(_UPSERT_JOBS, (_jobs_json(merged.values()),))
        if entries:
            connection.exec_driver_sql(_INSERT_AUDIT, (_audit_json(entries),))


def _drain(buffer: deque[Any]) -> list[Any]:
    items = []
    while True:
        try:
            items.append(buffer.popleft())
        except IndexError:
            return items
