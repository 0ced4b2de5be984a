"""Dead letters: Dramatiq's per-queue ``.XQ`` plus the reason each message died.

Dramatiq keeps the dead message as it was enqueued, which loses why it failed;
the reason (exception type and message) is stored beside it, in a hash keyed
by the same Redis message id.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from nightshift.common.records import PRIOR_ATTEMPTS, attempt_number
from nightshift.common.redis_keys import RedisKeys

#: How many characters of an exception message are kept as the reason.
REASON_MAX_CHARS = 1000


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message and why it died."""

    redis_message_id: str
    queue_name: str
    dead_at_ms: int
    message: Message[Any] | None
    error_type: str
    reason: str


def _keys(broker: RedisBroker) -> RedisKeys:
    return RedisKeys(broker.namespace)


def record_reason(broker: RedisBroker, queue_name: str, redis_message_id: str, error_type: str, reason: str) -> None:
    """Keep why *redis_message_id* was dead-lettered on *queue_name*."""
    entry = json.dumps(
        {"error_type": error_type, "reason": reason[:REASON_MAX_CHARS], "at_ms": int(time.time() * 1000)}
    )
    key = _keys(broker).dead_reasons(queue_name)
    with broker.client.pipeline(transaction=False) as pipe:
        pipe.hset(key, redis_message_id, entry)
        pipe.pexpire(key, broker.dead_message_ttl)
        pipe.execute()


def list_dead_letters(broker: RedisBroker, queue_name: str, *, limit: int = 100) -> list[DeadLetter]:
    """The newest *limit* dead letters of *queue_name* with their reasons."""
    keys = _keys(broker)
    entries = broker.client.zrevrange(keys.dead(queue_name), 0, limit - 1, withscores=True)
    if not entries:
        return []
    ids = [entry_id.decode() for entry_id, _ in entries]
    bodies = broker.client.hmget(keys.dead_messages(queue_name), ids)
    reasons = broker.client.hmget(keys.dead_reasons(queue_name), ids)
    letters = []
    for redis_id, (_, score), body, raw_reason in zip(ids, entries, bodies, reasons, strict=True):
        try:
            message = Message.decode(body) if body else None
        except Exception:
            message = None
        why = json.loads(raw_reason) if raw_reason else {"error_type": "Unknown", "reason": "no reason recorded"}
        letters.append(DeadLetter(redis_id, queue_name, int(score), message, why["error_type"], why["reason"]))
    return letters


def replay_dead_letter(broker: RedisBroker, queue_name: str, redis_message_id: str) -> bool:
    """Move one dead letter back to its queue with its retry count reset.

    Its attempts so far are kept apart (:data:`~nightshift.common.records.PRIOR_ATTEMPTS`),
    so its job record, final at "dead", moves on again when it runs.

    Returns:
      False when there is no such dead letter (or its body is undecodable).
    """
    body = broker.client.hget(_keys(broker).dead_messages(queue_name), redis_message_id)
    if body is None:
        return False
    try:
        message = Message.decode(body)
    except Exception:
        return False
    options = {k: v for k, v in message.options.items() if k not in {"retries", "traceback", "redis_message_id"}}
    options[PRIOR_ATTEMPTS] = attempt_number(message.options)  # its record counts on from there
    broker.enqueue(Message(**{**message.asdict(), "options": options}))
    _forget(broker, queue_name, redis_message_id)
    return True


def purge_dead_letters(broker: RedisBroker, queue_name: str) -> int:
    """Delete every dead letter of *queue_name*; return how many there were."""
    keys = _keys(broker)
    count = int(broker.client.zcard(keys.dead(queue_name)))
    broker.client.delete(keys.dead(queue_name), keys.dead_messages(queue_name), keys.dead_reasons(queue_name))
    return count


def _forget(broker: RedisBroker, queue_name: str, redis_message_id: str) -> None:
    keys = _keys(broker)
    with broker.client.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.dead(queue_name), redis_message_id)
        pipe.hdel(keys.dead_messages(queue_name), redis_message_id)
        pipe.hdel(keys.dead_reasons(queue_name), redis_message_id)
        pipe.execute()
