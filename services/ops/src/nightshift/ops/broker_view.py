"""What is in a queue right now: its ready messages (next first) and its delayed ones (by due time).

Read straight from the broker's keys (:class:`~nightshift.common.redis_keys.RedisKeys`):
the ready list holds Redis ids, the ``.msgs`` hash the bodies, and the delay
queue's hash the delayed bodies with their ``eta``. Every read is bounded.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from nightshift.common.redis_keys import RedisKeys

#: Messages shown per list of a queue's page.
LIST_LIMIT = 100


def ready_messages(broker: RedisBroker, queue: str, *, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """The first *limit* ready messages of *queue*, the next to be fetched first."""
    keys = RedisKeys(broker.namespace)
    redis_ids = broker.client.lrange(keys.queue(queue), 0, limit - 1)
    if not redis_ids:
        return []
    bodies = broker.client.hmget(keys.messages(queue), redis_ids)
    now_ms = time.time() * 1000
    listed = []
    for body in bodies:
        message = _decode(body)
        if message is None:
            continue  # acked between the two reads, or not a Dramatiq message
        listed.append(
            {
                "job_id": message.message_id,
                "actor": message.actor_name,
                "age_s": round(max(now_ms - message.message_timestamp, 0) / 1000, 3),
                "enqueued_at": _at(message.message_timestamp),
                "trigger": message.options.get("trigger"),
            }
        )
    return listed


def delayed_messages(broker: RedisBroker, queue: str, *, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Up to *limit* delayed messages of *queue* (retries, delayed sends), soonest due first."""
    keys = RedisKeys(broker.namespace)
    bodies: list[bytes] = []
    cursor = 0
    while True:
        cursor, chunk = broker.client.hscan(keys.delayed_messages(queue), cursor, count=limit)
        bodies += list(chunk.values())
        if cursor == 0 or len(bodies) >= limit * 10:  # bounded: enough to sort a page from
            break
    listed = []
    for body in bodies:
        message = _decode(body)
        if message is None:
            continue
        eta = int(message.options.get("eta", message.message_timestamp))
        listed.append(
            {
                "job_id": message.message_id,
                "actor": message.actor_name,
                "due_at": _at(eta),
                "retries": int(message.options.get("retries", 0)),
                "enqueued_at": _at(message.message_timestamp),
            }
        )
    listed.sort(key=lambda item: str(item["due_at"]))
    return listed[:limit]


def _decode(body: bytes | None) -> Message[Any] | None:
    if body is None:
        return None
    try:
        return Message.decode(body)
    except Exception:
        return None


def _at(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()
