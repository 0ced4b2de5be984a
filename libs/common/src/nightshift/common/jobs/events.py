"""A job's progress as a stream of events that survives reconnects, and its server-sent-events form.

Progress events carry the id of their entry in the job's Redis stream, so a client
that reconnects with ``Last-Event-ID`` gets exactly the events after the last one it
saw. The stream ends with one ``status`` event carrying the final status, result and
error, whose id is :data:`FINAL_EVENT_ID`: a client reconnecting with that id has
seen everything and gets nothing more (an HTTP endpoint answers it with 204, which
tells a browser's ``EventSource`` to stop).

Nothing here knows a web framework: :func:`sse_stream` yields the bytes of the
response body; the ops service hands the iterator to its streaming response (see
``docs/patterns.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nightshift.common.jobs import store
from nightshift.common.jobs.status import JobStatus, authorize, job_status

if TYPE_CHECKING:
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from sqlalchemy import Engine

#: The id of the last event of every stream.
FINAL_EVENT_ID = "final"
#: How long a read waits for new progress before the status is checked again (and a keep-alive sent).
POLL_INTERVAL_S = 1.0
#: Asks browsers to reconnect this soon after a dropped connection.
RETRY_MS = 1000
#: The shape of a Redis stream id, the only ``Last-Event-ID`` resumed from.
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True)
class JobUpdate:
    """One event of a job's stream.

    ``progress`` events carry done/total/note and the attempt; the initial snapshot
    (no id) and the final one (:data:`FINAL_EVENT_ID`) are ``status`` events with the
    whole :meth:`JobStatus.as_dict`.
    """

    event: Literal["progress", "status"]
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


def open_job_events(
    job_id: str,
    *,
    engine: Engine,
    redis: redis.Redis[bytes],
    broker: RedisBroker | None = None,
    tenants: Collection[str] | None = None,
    last_event_id: str | None = None,
    poll_interval_s: float = POLL_INTERVAL_S,
) -> Iterator[JobUpdate | None]:
    """Check that *job_id* exists and may be read, then return its events.

    The checks happen now, before anything is streamed, so an endpoint can answer
    404 or 403; the returned iterator yields :class:`JobUpdate` objects, and None
    whenever *poll_interval_s* passed without news (time for a keep-alive), until
    the final status.

    Parameters:
      tenants: The services whose jobs the caller may read; None for all.
      last_event_id: The ``Last-Event-ID`` of a reconnecting client.

    Raises:
      UnknownJob: Nothing knows the job.
      JobForbidden: The job belongs to a tenant outside *tenants*.
    """
    status = authorize(job_status(job_id, engine=engine, redis=redis, broker=broker), tenants)
    return _updates(status, engine, redis, broker, last_event_id, poll_interval_s)


def _updates(
    status: JobStatus,
    engine: Engine,
    client: redis.Redis[bytes],
    broker: RedisBroker | None,
    last_event_id: str | None,
    poll_interval_s: float,
) -> Iterator[JobUpdate | None]:
    if last_event_id == FINAL_EVENT_ID:
        return
    resuming = last_event_id is not None and _STREAM_ID.match(last_event_id) is not None
    after = last_event_id if resuming and last_event_id is not None else "0-0"
    if not resuming:
        yield JobUpdate("status", status.as_dict())
    key = store.events_key(status.job_id)
    while True:
        entries = client.xread({key: after}, count=500, block=max(1, int(poll_interval_s * 1000)))
        updates = list(_progress_updates(entries))
        yield from updates
        if updates:
            after = updates[-1].id or after
        else:
            yield None
        status = job_status(status.job_id, engine=engine, redis=client, broker=broker)
        if status.finished:
            yield from _progress_updates(client.xread({key: after}, count=MAX_DRAIN))
            yield JobUpdate("status", status.as_dict(), FINAL_EVENT_ID)
            return


#: Events read in one go once the job has finished (more than a stream keeps).
MAX_DRAIN = store.MAX_EVENTS * 2


def _progress_updates(entries: Any) -> Iterator[JobUpdate]:
    for _, items in entries or ():
        for entry_id, fields in items:
            progress = store.Progress.from_fields(fields)
            if progress is None:
                continue
            attempt = fields.get(b"attempt")
            data = {**progress.as_dict(), "attempt": int(attempt) if attempt is not None else None}
            yield JobUpdate("progress", data, entry_id.decode())


def format_sse(update: JobUpdate | None) -> bytes:
    """One server-sent event (or, for None, a keep-alive comment) as bytes."""
    if update is None:
        return b": keep-alive\n\n"
    lines = [f"id: {update.id}"] if update.id is not None else []
    lines.append(f"event: {update.event}")
    lines.append("data: " + json.dumps(update.data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def sse_stream(updates: Iterator[JobUpdate | None], *, retry_ms: int = RETRY_MS) -> Iterator[bytes]:
    """The body of a ``text/event-stream`` response for *updates* (from :func:`open_job_events`)."""
    yield f"retry: {retry_ms}\n\n".encode()
    for update in updates:
        yield format_sse(update)
