"""Live worker processes and what they run now, as their liveness threads publish them.

Each worker process's :class:`~nightshift.common.middleware.liveness.WorkerLiveness`
writes, every second, a hash describing the process and a hash of the messages
it is running; both expire a heartbeat timeout after it stops, so a killed
worker disappears from here on its own.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nightshift.common.redis_keys import RedisKeys

if TYPE_CHECKING:
    from dramatiq.brokers.redis import RedisBroker


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@dataclass(frozen=True)
class WorkerInfo:
    """One live worker process."""

    worker_id: str
    service: str
    host: str
    pid: int
    threads: int
    started_at: dt.datetime
    queues: tuple[str, ...]
    heartbeat_at: dt.datetime

    def heartbeat_age_s(self, now: dt.datetime | None = None) -> float:
        """Seconds since its last heartbeat."""
        return ((now or dt.datetime.now(dt.UTC)) - self.heartbeat_at).total_seconds()


@dataclass(frozen=True)
class RunningJob:
    """A message a live worker process is running now."""

    worker_id: str
    message_id: str
    actor: str
    queue: str
    started_at: dt.datetime

    def running_for_s(self, now: dt.datetime | None = None) -> float:
        """Seconds since it started."""
        return ((now or dt.datetime.now(dt.UTC)) - self.started_at).total_seconds()


def _live_ids(broker: RedisBroker) -> list[str]:
    keys = RedisKeys(broker.namespace)
    since = int(time.time() * 1000) - int(broker.heartbeat_timeout)
    return [raw.decode() for raw in broker.client.zrangebyscore(keys.heartbeats(), since, "+inf")]


def _live_hashes(broker: RedisBroker, key: Callable[[RedisKeys, str], str]) -> list[tuple[str, dict[bytes, bytes]]]:
    """Each live worker's id with its hash stored under ``key(keys, worker_id)``, in one round trip."""
    keys = RedisKeys(broker.namespace)
    ids = _live_ids(broker)
    with broker.client.pipeline(transaction=False) as pipe:
        for worker_id in ids:
            pipe.hgetall(key(keys, worker_id))
        hashes = pipe.execute()
    return list(zip(ids, hashes, strict=True))


def live_workers(broker: RedisBroker) -> list[WorkerInfo]:
    """Every worker process with a fresh heartbeat that published its description, by service and host."""
    workers = []
    for worker_id, raw in _live_hashes(broker, RedisKeys.worker):
        if not raw:
            continue  # a worker without WorkerLiveness, or whose description just expired
        info = {key.decode(): value.decode() for key, value in raw.items()}
        workers.append(
            WorkerInfo(
                worker_id=worker_id,
                service=info["service"],
                host=info["host"],
                pid=int(info["pid"]),
                threads=int(info["threads"]),
                started_at=_at(int(info["started_at_ms"])),
                queues=tuple(q for q in info["queues"].split(",") if q),
                heartbeat_at=_at(int(info["heartbeat_at_ms"])),
            )
        )
    return sorted(workers, key=lambda w: (w.service, w.host, w.pid))


def running_jobs(broker: RedisBroker) -> list[RunningJob]:
    """Every message live worker processes are running now (as of their last second), oldest first."""
    jobs = []
    for worker_id, raw in _live_hashes(broker, RedisKeys.running):
        for message_id, value in raw.items():
            data = json.loads(value)
            jobs.append(
                RunningJob(worker_id, message_id.decode(), data["actor"], data["queue"], _at(data["started_at_ms"]))
            )
    return sorted(jobs, key=lambda job: job.started_at)


def stopped_workers(broker: RedisBroker, worker_ids: list[str]) -> set[str]:
    """Those of *worker_ids* that stopped cleanly within the last hour (their liveness said goodbye)."""
    if not worker_ids:
        return set()
    keys = RedisKeys(broker.namespace)
    with broker.client.pipeline(transaction=False) as pipe:
        for worker_id in worker_ids:
            pipe.exists(keys.stopped(worker_id))
        found = pipe.execute()
    return {worker_id for worker_id, exists in zip(worker_ids, found, strict=True) if exists}
