"""Finding a job's message in the broker's Redis by its job id.

Redis stores each message under a Redis id of its own (a new one per enqueue,
see ``RedisBroker.enqueue``), with the job id (the Dramatiq message id) only
inside the body. Operators and the dashboard address jobs by job id, so the
lookups here scan a queue's bodies with ``HSCAN`` and match the id in the
encoded JSON: linear in the messages held, which is fine for an operator's
action and never runs on the hot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dramatiq.common import dq_name

from nightshift.common.redis_keys import RedisKeys

if TYPE_CHECKING:
    import redis
    from dramatiq.brokers.redis import RedisBroker

#: How many hash entries one ``HSCAN`` step asks for.
SCAN_COUNT = 1000

#: Where a message can be: in a queue's ready list, fetched by a worker (prefetched or
#: running), waiting in the delay queue (a retry, or sent with a delay), or dead.
State = Literal["ready", "in_flight", "delayed", "dead"]


@dataclass(frozen=True)
class JobLocation:
    """Where a job's message is in Redis."""

    job_id: str
    queue: str
    state: State
    redis_message_id: str


def job_id_of(body: bytes) -> str | None:
    """The job id (Dramatiq message id) in an encoded message, or None if it has none."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    job_id = data.get("message_id") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) else None


def index_by_job_id(client: redis.Redis[bytes], hash_key: str) -> dict[str, str]:
    """Job id → Redis id of every decodable message in the bodies hash *hash_key*."""
    index = {}
    for redis_id, body in client.hscan_iter(hash_key, count=SCAN_COUNT):
        job_id = job_id_of(body)
        if job_id is not None:
            index[job_id] = redis_id.decode()
    return index


def find_redis_id(client: redis.Redis[bytes], hash_key: str, job_id: str) -> str | None:
    """The Redis id under which job *job_id*'s body is kept in *hash_key*, if it is there."""
    needle = job_id.encode()
    for redis_id, body in client.hscan_iter(hash_key, count=SCAN_COUNT):
        if needle in body and job_id_of(body) == job_id:
            return str(redis_id.decode())
    return None


def known_queues(broker: RedisBroker) -> list[str]:
    """Every queue that holds something in Redis or is declared on *broker* (no delay queues)."""
    keys = RedisKeys(broker.namespace)
    prefix = keys.key("")
    names = {queue for queue in broker.get_declared_queues() if not queue.endswith(".DQ")}
    for suffix in (".msgs", ".XQ"):
        for raw in broker.client.scan_iter(match=keys.pattern(suffix), count=SCAN_COUNT):
            name = raw.decode()[len(prefix) :]
            for tail in (".msgs", ".XQ", ".DQ"):
                name = name.removesuffix(tail)
            if not name.startswith("__"):
                names.add(name)
    return sorted(names)


def locate_job(broker: RedisBroker, job_id: str, *, queues: list[str] | None = None) -> JobLocation | None:
    """Where job *job_id*'s message is now, searching *queues* (default: :func:`known_queues`).

    Returns:
      None when no queue holds it (done, purged, expired, or never enqueued).
    """
    keys = RedisKeys(broker.namespace)
    client = broker.client
    for queue in queues if queues is not None else known_queues(broker):
        redis_id = find_redis_id(client, keys.messages(queue), job_id)
        if redis_id is not None:
            ready = client.lpos(keys.queue(queue), redis_id) is not None
            return JobLocation(job_id, queue, "ready" if ready else "in_flight", redis_id)
        redis_id = find_redis_id(client, keys.messages(dq_name(queue)), job_id)
        if redis_id is not None:
            return JobLocation(job_id, queue, "delayed", redis_id)
        redis_id = find_redis_id(client, keys.dead_messages(queue), job_id)
        if redis_id is not None:
            return JobLocation(job_id, queue, "dead", redis_id)
    return None
