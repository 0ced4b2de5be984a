"""The durable job history: ``job_records`` (a job's latest state) and ``task_audit`` (its attempts).

Searches are keyset-paged, newest first, and each filter has an index
(``ix_job_records_*``), so a page costs the same on ten million records as on ten.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from nightshift.common.db.models import JobRecord, TaskAudit
from nightshift.common.errors import PermanentError

#: Records per page of a search.
PAGE_SIZE = 50

#: The statuses a record can have.
STATUSES = ("queued", "running", "retrying", "done", "skipped", "dead", "revoked", "purged")


class InvalidJobId(PermanentError):
    """A job id that is not a UUID."""


def parse_job_id(value: str) -> uuid.UUID:
    """*value* as a job id.

    Raises:
      InvalidJobId: It is not a UUID (naming it).
    """
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidJobId(f"{value!r} is not a job id (a UUID such as 0b6d1c7e-…)") from None


def parse_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """The ``next`` cursor of a page of jobs (``<updated_at>|<job id>``).

    Raises:
      InvalidJobId: It is not a cursor a previous page gave.
    """
    moment, _, job_id = cursor.partition("|")
    try:
        return dt.datetime.fromisoformat(moment), uuid.UUID(job_id)
    except ValueError:
        raise InvalidJobId(f"before: {cursor!r} is not a cursor from a previous page") from None


@dataclass(frozen=True)
class JobFilters:
    """What a search of the history asks for; every field is optional.

    Parameters:
      job_id: One job (the other filters then only confirm it).
      actor, queue, status, trace_id: Exact matches.
      since, until: The record's last update falls in [since, until).
      before: Keyset cursor: the (updated_at, job id) of the last row of the previous page.
    """

    job_id: uuid.UUID | None = None
    actor: str | None = None
    queue: str | None = None
    status: str | None = None
    trace_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before: tuple[dt.datetime, uuid.UUID] | None = None


def search(session: Session, filters: JobFilters, *, limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """The records matching *filters*, newest update first."""
    query = select(JobRecord)
    if filters.job_id is not None:
        query = query.where(JobRecord.message_id == filters.job_id)
    for column, value in (
        (JobRecord.actor, filters.actor),
        (JobRecord.queue, filters.queue),
        (JobRecord.status, filters.status),
        (JobRecord.trace_id, filters.trace_id),
    ):
        if value:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(JobRecord.updated_at >= filters.since)
    if filters.until is not None:
        query = query.where(JobRecord.updated_at < filters.until)
    if filters.before is not None:
        query = query.where(tuple_(JobRecord.updated_at, JobRecord.message_id) < filters.before)
    query = query.order_by(JobRecord.updated_at.desc(), JobRecord.message_id.desc()).limit(limit)
    return [summary(row) for row in session.scalars(query)]


def summary(row: JobRecord) -> dict[str, Any]:
    """What a list of jobs shows about one."""
    return {
        "job_id": str(row.message_id),
        "actor": row.actor,
        "queue": row.queue,
        "status": row.status,
        "attempts": row.attempts,
        "trigger": row.trigger,
        "enqueued_at": _iso(row.enqueued_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "updated_at": _iso(row.updated_at),
        "last_error": row.last_error,
        "trace_id": row.trace_id,
    }


def detail(session: Session, job_id: uuid.UUID, *, trace_url_template: str) -> dict[str, Any] | None:
    """Everything known about one job: arguments, attempts with timings, error, traceback, trigger, trace.

    Returns:
      None when there is no record of *job_id*.
    """
    row = session.get(JobRecord, job_id)
    if row is None:
        return None
    attempts = session.scalars(
        select(TaskAudit).where(TaskAudit.message_id == job_id).order_by(TaskAudit.attempt, TaskAudit.id)
    )
    return {
        **summary(row),
        "args": row.args,
        "traceback": row.traceback,
        "trigger_kind": (row.trigger or "publish").split(":", 1)[0],
        "trace_url": trace_url_template.format(trace_id=row.trace_id) if row.trace_id else None,
        "attempts_detail": [
            {
                "attempt": attempt.attempt,
                "outcome": attempt.outcome,
                "started_at": _iso(attempt.started_at),
                "finished_at": _iso(attempt.finished_at),
                "duration_ms": round(attempt.duration_ms, 3),
                "error": attempt.error,
            }
            for attempt in attempts
        ],
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None
