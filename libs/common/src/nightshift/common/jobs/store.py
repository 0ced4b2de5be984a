"""Where a job's progress and result live: a hash and a stream per job in Redis, then a row in PostgreSQL.

While a job runs, what it reports goes to the application Redis only (throttled by
the reporter): ``nightshift:job:<id>:state`` (hash: the latest progress, the result)
and ``nightshift:job:<id>:events`` (a stream of progress events, whose ids are the
server-sent events' ids, so a client resumes after ``Last-Event-ID``). When the job
ends, the :class:`~nightshift.common.middleware.job_progress.JobProgress` middleware
copies the last progress and the result into ``job_progress`` with one statement,
where they outlive the Redis keys (kept :data:`STATE_TTL_S`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    import redis
    from sqlalchemy import Engine

#: How long a job's progress and result stay in Redis after its last report.
STATE_TTL_S = 7 * 24 * 3600
#: Progress events kept per job (older ones are trimmed, approximately).
MAX_EVENTS = 1000
#: A result is a small summary (a file's key, size, row count, link): at most this many bytes of JSON.
RESULT_MAX_BYTES = 16 * 1024
#: How many characters of a progress note are kept.
NOTE_MAX_CHARS = 200


def state_key(job_id: str) -> str:
    """The hash of job *job_id*'s latest progress and its result."""
    return f"nightshift:job:{job_id}:state"


def events_key(job_id: str) -> str:
    """The stream of job *job_id*'s progress events."""
    return f"nightshift:job:{job_id}:events"


@dataclass(frozen=True)
class Progress:
    """How far a job is: *done* of *total* (None when unknown), with a short *note*."""

    done: int
    total: int | None = None
    note: str | None = None
    at: dt.datetime | None = None

    @property
    def fraction(self) -> float | None:
        """Done over total, between 0 and 1; None when the total is unknown or zero."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))

    def as_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "total": self.total,
            "note": self.note,
            "fraction": self.fraction,
            "at": self.at.isoformat() if self.at else None,
        }

    def fields(self) -> dict[str | bytes, str | bytes | int | float]:
        """The progress as Redis hash/stream fields (absent values left out)."""
        fields: dict[str | bytes, str | bytes | int | float] = {
            "done": str(self.done),
            "at": (self.at or now()).isoformat(),
        }
        if self.total is not None:
            fields["total"] = str(self.total)
        if self.note:
            fields["note"] = self.note[:NOTE_MAX_CHARS]
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes]) -> Progress | None:
        if b"done" not in fields:
            return None
        total = fields.get(b"total")
        note = fields.get(b"note")
        at = fields.get(b"at")
        return cls(
            done=int(fields[b"done"]),
            total=int(total) if total is not None else None,
            note=note.decode() if note is not None else None,
            at=dt.datetime.fromisoformat(at.decode()) if at is not None else None,
        )


def encode_result(result: Mapping[str, Any]) -> str:
    """*result* as JSON.

    Raises:
      ValueError: When it cannot be written as JSON or is over :data:`RESULT_MAX_BYTES`.
    """
    try:
        encoded = json.dumps(dict(result), default=_json_default, separators=(",", ":"))
    except TypeError as error:
        raise ValueError(f"a job result must be JSON: {error}") from None
    if len(encoded.encode()) > RESULT_MAX_BYTES:
        raise ValueError(f"a job result is a small summary (at most {RESULT_MAX_BYTES} bytes of JSON)")
    return encoded


def write_progress(client: redis.Redis[bytes], job_id: str, progress: Progress, *, attempt: int) -> None:
    """Store *progress* as job *job_id*'s latest and append it to its events (one round trip)."""
    fields: dict[str | bytes, str | bytes | int | float] = {**progress.fields(), "attempt": str(attempt)}
    pipe = client.pipeline(transaction=False)
    pipe.hset(state_key(job_id), mapping=fields)
    pipe.xadd(events_key(job_id), fields, maxlen=MAX_EVENTS)
    pipe.expire(state_key(job_id), STATE_TTL_S)
    pipe.expire(events_key(job_id), STATE_TTL_S)
    pipe.execute()


def write_result(client: redis.Redis[bytes], job_id: str, encoded: str) -> None:
    """Store job *job_id*'s result (already :func:`encode_result`-ed)."""
    pipe = client.pipeline(transaction=False)
    pipe.hset(state_key(job_id), "result", encoded)
    pipe.expire(state_key(job_id), STATE_TTL_S)
    pipe.execute()


@dataclass(frozen=True)
class StoredState:
    """What is known of a job's progress and result, from Redis or PostgreSQL."""

    progress: Progress | None
    result: dict[str, Any] | None


def read_state(client: redis.Redis[bytes], job_id: str) -> StoredState | None:
    """Job *job_id*'s latest progress and result in Redis; None when Redis has nothing."""
    fields = client.hgetall(state_key(job_id))
    if not fields:
        return None
    raw = fields.get(b"result")
    return StoredState(Progress.from_fields(fields), json.loads(raw) if raw is not None else None)


_PERSIST = """
INSERT INTO job_progress (message_id, done, total, note, result, updated_at)
VALUES (CAST(:id AS uuid), :done, :total, :note, CAST(:result AS jsonb), now())
ON CONFLICT (message_id) DO UPDATE SET
    done = EXCLUDED.done, total = EXCLUDED.total, note = EXCLUDED.note,
    result = COALESCE(EXCLUDED.result, job_progress.result), updated_at = EXCLUDED.updated_at
"""


def persist(engine: Engine, job_id: str, progress: Progress | None, encoded_result: str | None) -> None:
    """Keep job *job_id*'s last progress and result in ``job_progress`` (one statement)."""
    with engine.begin() as connection:
        connection.execute(
            text(_PERSIST),
            {
                "id": job_id,
                "done": progress.done if progress else 0,
                "total": progress.total if progress else None,
                "note": progress.note[:NOTE_MAX_CHARS] if progress and progress.note else None,
                "result": encoded_result,
            },
        )


def read_persisted(engine: Engine, job_id: str) -> StoredState | None:
    """Job *job_id*'s progress and result as kept in ``job_progress``; None if it has no row."""
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT done, total, note, result, updated_at FROM job_progress WHERE message_id = CAST(:id AS uuid)"),
            {"id": job_id},
        ).first()
    if row is None:
        return None
    return StoredState(Progress(row.done, row.total, row.note, row.updated_at), row.result)


def now() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.UTC)


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
