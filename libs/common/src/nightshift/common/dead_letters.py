"""Dead letters: Dramatiq's per-queue ``.XQ`` plus the reason each message died.

Dramatiq keeps the dead message as it was enqueued, which loses why it failed;
the reason (exception type and message) is stored beside it, in a hash keyed
by the same Redis message id.

Operators address dead letters by **job id** (the Dramatiq message id, which
``publish`` returns and ``job_records`` is keyed by), never by the Redis id
under which the broker happens to store them: listing shows it, and replay and
delete accept nothing else. An id that matches no dead letter raises
:class:`~nightshift.common.errors.UnknownJob` before anything is changed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from nightshift.common.errors import UnknownJob
from nightshift.common.locate import find_redis_id, index_by_job_id, known_queues
from nightshift.common.records import PRIOR_ATTEMPTS, attempt_number
from nightshift.common.redis_keys import RedisKeys

#: How many characters of an exception message are kept as the reason.
REASON_MAX_CHARS = 1000

#: Called with how many dead letters were just handled (for a progress bar).
Progress = Callable[[int], None]


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message and why it died.

    ``job_id`` and ``actor`` are None only for a body that is not a Dramatiq
    message at all (it can be listed and purged, not replayed).
    """

    redis_message_id: str
    queue_name: str
    dead_at_ms: int
    message: Message[Any] | None
    error_type: str
    reason: str

    @property
    def job_id(self) -> str | None:
        """The job id: the Dramatiq message id that ``publish`` returned."""
        return self.message.message_id if self.message else None

    @property
    def actor(self) -> str | None:
        return self.message.actor_name if self.message else None

    @property
    def dead_at(self) -> dt.datetime:
        """When it died (UTC)."""
        return dt.datetime.fromtimestamp(self.dead_at_ms / 1000, dt.UTC)


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
    return _letters(broker, queue_name, [(entry_id.decode(), int(score)) for entry_id, score in entries])


def _letters(broker: RedisBroker, queue_name: str, entries: list[tuple[str, int]]) -> list[DeadLetter]:
    if not entries:
        return []
    keys = _keys(broker)
    ids = [redis_id for redis_id, _ in entries]
    bodies = broker.client.hmget(keys.dead_messages(queue_name), ids)
    reasons = broker.client.hmget(keys.dead_reasons(queue_name), ids)
    letters = []
    for (redis_id, score), body, raw_reason in zip(entries, bodies, reasons, strict=True):
        try:
            message = Message.decode(body) if body else None
        except Exception:
            message = None
        why = json.loads(raw_reason) if raw_reason else {"error_type": "Unknown", "reason": "no reason recorded"}
        letters.append(DeadLetter(redis_id, queue_name, score, message, why["error_type"], why["reason"]))
    return letters


def get_dead_letters(broker: RedisBroker, queue_name: str, job_ids: Iterable[str]) -> list[DeadLetter]:
    """The dead letters of *queue_name* with these job ids, in the order asked.

    Raises:
      UnknownJob: When one of the ids matches no dead letter of the queue (naming the first).
    """
    wanted = list(dict.fromkeys(job_ids))
    keys = _keys(broker)
    if len(wanted) == 1:
        found = find_redis_id(broker.client, keys.dead_messages(queue_name), wanted[0])
        index = {wanted[0]: found} if found else {}
    else:
        index = index_by_job_id(broker.client, keys.dead_messages(queue_name))
    for job_id in wanted:
        if job_id not in index:
            raise UnknownJob(job_id, queue=queue_name, where="dead letters")
    redis_ids = [index[job_id] for job_id in wanted]
    scores = broker.client.zmscore(keys.dead(queue_name), redis_ids)
    return _letters(broker, queue_name, [(r, int(s or 0)) for r, s in zip(redis_ids, scores, strict=True)])


def find_dead_letter_queue(broker: RedisBroker, job_id: str) -> str:
    """The queue whose dead letters hold job *job_id*.

    Raises:
      UnknownJob: When no queue's dead letters hold it.
    """
    keys = _keys(broker)
    for queue in known_queues(broker):
        if find_redis_id(broker.client, keys.dead_messages(queue), job_id) is not None:
            return queue
    raise UnknownJob(job_id, where="dead letters")


def replay(
    broker: RedisBroker, queue_name: str, job_ids: Iterable[str], *, progress: Progress | None = None
) -> list[DeadLetter]:
    """Move these dead letters back to *queue_name* with their retry counts reset.

    Their attempts so far are kept apart (:data:`~nightshift.common.records.PRIOR_ATTEMPTS`),
    so each job record, final at "dead", moves on again when it runs.

    Parameters:
      job_ids: Job ids (Dramatiq message ids); every one is checked before any is replayed.
      progress: Called after each replayed letter with 1.

    Raises:
      UnknownJob: When an id matches no dead letter of the queue; nothing is replayed.

    Returns:
      The dead letters replayed.
    """
    letters = get_dead_letters(broker, queue_name, job_ids)
    for letter in letters:
        _replay_one(broker, letter)
        if progress is not None:
            progress(1)
    return letters


def replay_all(broker: RedisBroker, queue_name: str, *, progress: Progress | None = None) -> int:
    """Replay every replayable dead letter of *queue_name*; return how many.

    Bodies that are not Dramatiq messages stay (purge removes them).
    """
    keys = _keys(broker)
    index = index_by_job_id(broker.client, keys.dead_messages(queue_name))
    replayed = 0
    for chunk in _chunks(list(index.values()), 500):
        for letter in _letters(broker, queue_name, [(redis_id, 0) for redis_id in chunk]):
            if letter.message is not None:
                _replay_one(broker, letter)
                replayed += 1
        if progress is not None:
            progress(len(chunk))
    return replayed


def replay_dead_letter(broker: RedisBroker, queue_name: str, job_id: str) -> bool:
    """Replay one dead letter of *queue_name* by job id (see :func:`replay`).

    Raises:
      UnknownJob: When it matches no dead letter of the queue.

    Returns:
      True (it was replayed).
    """
    return bool(replay(broker, queue_name, [job_id]))


def delete(broker: RedisBroker, queue_name: str, job_ids: Iterable[str], *, progress: Progress | None = None) -> int:
    """Delete these dead letters of *queue_name* (job ids); return how many.

    Raises:
      UnknownJob: When an id matches no dead letter of the queue; nothing is deleted.
    """
    letters = get_dead_letters(broker, queue_name, job_ids)
    for chunk in _chunks(letters, 500):
        _forget(broker, queue_name, [letter.redis_message_id for letter in chunk])
        if progress is not None:
            progress(len(chunk))
    return len(letters)


def purge_dead_letters(broker: RedisBroker, queue_name: str) -> int:
    """Delete every dead letter of *queue_name*; return how many there were."""
    keys = _keys(broker)
    with broker.client.pipeline(transaction=True) as pipe:
        pipe.zcard(keys.dead(queue_name))
        pipe.delete(keys.dead(queue_name), keys.dead_messages(queue_name), keys.dead_reasons(queue_name))
        count, _ = pipe.execute()
    return int(count)


#: The same as :func:`purge_dead_letters`.
purge = purge_dead_letters


def _replay_one(broker: RedisBroker, letter: DeadLetter) -> None:
    message = letter.message
    assert message is not None  # callers pass decodable letters only
    options = {k: v for k, v in message.options.items() if k not in {"retries", "traceback", "redis_message_id"}}
    options[PRIOR_ATTEMPTS] = attempt_number(message.options)  # its record counts on from there
    broker.enqueue(Message(**{**message.asdict(), "options": options}))
    _forget(broker, letter.queue_name, [letter.redis_message_id])


def _forget(broker: RedisBroker, queue_name: str, redis_message_ids: list[str]) -> None:
    if not redis_message_ids:
        return
    keys = _keys(broker)
    with broker.client.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.dead(queue_name), *redis_message_ids)
        pipe.hdel(keys.dead_messages(queue_name), *redis_message_ids)
        pipe.hdel(keys.dead_reasons(queue_name), *redis_message_ids)
        pipe.execute()


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
