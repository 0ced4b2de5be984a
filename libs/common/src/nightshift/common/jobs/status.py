"""A job's status, progress, result and error, for the caller who started it.

:func:`job_status` reads the job record in PostgreSQL (status, attempts, times,
last error) and the progress and result in Redis, falling back to the copy kept in
``job_progress`` once the Redis keys have expired. A job published a moment ago
may not be recorded yet (records are written in batches): given the broker, the
queues are searched too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from nightshift.common.errors import JobForbidden, UnknownJob
from nightshift.common.jobs import store
from nightshift.common.locate import locate_job

if TYPE_CHECKING:
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from sqlalchemy import Engine

#: Statuses after which nothing more happens to a job (until an operator replays it).
FINAL_STATUSES = frozenset({"done", "dead", "revoked", "skipped", "purged"})

#: What a message's place in Redis says about its job before it is recorded.
_LOCATION_STATUS = {"ready": "queued", "in_flight": "running", "delayed": "retrying", "dead": "dead"}


@dataclass(frozen=True)
class JobStatus:
    """Everything a caller may know about one job."""

    job_id: str
    status: str
    actor: str | None
    queue: str | None
    attempts: int = 0
    progress: store.Progress | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    enqueued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @property
    def finished(self) -> bool:
        """Whether the job has reached a final status."""
        return self.status in FINAL_STATUSES

    @property
    def tenant(self) -> str | None:
        """The service the job belongs to (its queue's service): what a token's tenants are checked against."""
        return self.queue.rsplit("_", 1)[0] if self.queue else None

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready values (what ``GET /api/jobs/{id}`` answers)."""
        return {
            "job_id": self.job_id,
            "status": self.status,
            "finished": self.finished,
            "actor": self.actor,
            "queue": self.queue,
            "attempts": self.attempts,
            "progress": self.progress.as_dict() if self.progress else None,
            "result": self.result,
            "error": self.error,
            "enqueued_at": _iso(self.enqueued_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def job_status(
    job_id: str, *, engine: Engine, redis: redis.Redis[bytes], broker: RedisBroker | None = None
) -> JobStatus:
    """The status of job *job_id*.

    Parameters:
      engine: Where ``job_records`` and ``job_progress`` are.
      redis: The application Redis (progress and results).
      broker: When given, a job not recorded yet is looked for in the queues.

    Raises:
      UnknownJob: When the id is not a job id or nothing knows the job.
    """
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise UnknownJob(job_id) from None
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT actor, queue, status, attempts, last_error, enqueued_at, started_at, finished_at "
                "FROM job_records WHERE message_id = CAST(:id AS uuid)"
            ),
            {"id": job_id},
        ).first()
    state = store.read_state(redis, job_id) or store.read_persisted(engine, job_id)
    if row is not None:
        return JobStatus(
            job_id,
            row.status,
            row.actor,
            row.queue,
            row.attempts,
            state.progress if state else None,
            state.result if state else None,
            row.last_error,
            row.enqueued_at,
            row.started_at,
            row.finished_at,
        )
    location = locate_job(broker, job_id) if broker is not None else None
    if location is not None:
        return JobStatus(
            job_id,
            _LOCATION_STATUS[location.state],
            None,
            location.queue,
            progress=state.progress if state else None,
            result=state.result if state else None,
        )
    if state is not None:  # reported, but its record is not written yet
        return JobStatus(job_id, "running", None, None, progress=state.progress, result=state.result)
    raise UnknownJob(job_id)


def authorize(status: JobStatus, tenants: Collection[str] | None) -> JobStatus:
    """*status* if a caller allowed the jobs of *tenants* may see it.

    Parameters:
      tenants: The services whose jobs the caller's token may read; None for all.

    Raises:
      JobForbidden: When the job belongs to another tenant (or to none known yet).
    """
    if tenants is None or status.tenant in tenants:
        return status
    raise JobForbidden(status.job_id)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
