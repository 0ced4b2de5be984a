"""Purging a queue: dropping its ready messages, never those a worker holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import DecodeError
from sqlalchemy import Engine

from nightshift.common import records
from nightshift.common.redis_keys import RedisKeys

#: The error a purged job's record shows.
PURGED_REASON = "purged by operator"

#: Removes the ready ids of KEYS[1] and their bodies in KEYS[2] atomically, in chunks
#: (``unpack`` has a limit); returns the bodies (false for an id without one). Fetched
#: (in-flight) messages are not in the list, so they are untouched and are acked as usual.
_PURGE = """
local ids = redis.call("lrange", KEYS[1], 0, -1)
local bodies = {}
redis.call("del", KEYS[1])
for i = 1, #ids, 5000 do
    local chunk = {unpack(ids, i, math.min(i + 4999, #ids))}
    for _, body in ipairs(redis.call("hmget", KEYS[2], unpack(chunk))) do
        bodies[#bodies + 1] = body
    end
    redis.call("hdel", KEYS[2], unpack(chunk))
end
return bodies
"""


def purge_queue(broker: RedisBroker, queue_name: str, *, engine: Engine | None = None) -> int:
    """Delete every ready message of *queue_name*; return how many.

    Messages in flight (prefetched or running), delayed ones and dead letters stay.
    With *engine*, each purged job's record ends ``purged`` (final: a late "queued"
    event of it changes nothing), created if its publisher had not written it yet.
    """
    keys = RedisKeys(broker.namespace)
    script = broker.client.register_script(_PURGE)
    bodies: list[bytes | None] = script(keys=[keys.queue(queue_name), keys.messages(queue_name)])
    if engine is not None:
        now = dt.datetime.now(dt.UTC)
        events = [event for body in bodies if body and (event := _purged(body, queue_name, now)) is not None]
        records.write(engine, events)
    return len(bodies)


def _purged(body: bytes, queue_name: str, now: dt.datetime) -> records.JobEvent | None:
    """The record event of a purged message; none for a body that is no Dramatiq message (no job id)."""
    try:
        message: dramatiq.Message[Any] = dramatiq.Message.decode(body)
    except DecodeError:
        return None
    return records.JobEvent(
        message_id=message.message_id,
        actor=message.actor_name,
        queue=queue_name,
        status="purged",
        at=now,
        attempts=records.attempt_number(message.options) - 1,
        error=PURGED_REASON,
    )
