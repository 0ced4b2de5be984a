"""Queue depths and live workers, read straight from the broker's Redis keys.

``LLEN`` alone misses prefetched and running work, so depth is split into
ready (the list), in flight (stored but not in the list: prefetched or
running), delayed (the ``.DQ`` hash) and dead (the ``.XQ`` sorted set).
:func:`queue_stats` adds the age of the oldest ready message and how many
delayed ones fall due soon, and :func:`backlog` turns that into the one number
an autoscaler needs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dramatiq.brokers.redis import RedisBroker

from nightshift.common.redis_keys import RedisKeys

#: Delayed messages due within this many seconds count in the backlog (see :func:`backlog`).
DUE_SOON_S = 30

#: Counts, in Redis, the delayed messages whose eta is at most ARGV[1] (ms): the bodies
#: never leave the server.
_DUE_BY = """
local n = 0
for _, body in ipairs(redis.call("hvals", KEYS[1])) do
    local eta = tonumber(string.match(body, '"eta":%s*(%d+)'))
    if eta == nil or eta <= tonumber(ARGV[1]) then n = n + 1 end
end
return n
"""


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    ready: int
    in_flight: int
    delayed: int
    dead: int


@dataclass(frozen=True)
class QueueStats:
    """One queue's state for dashboards, metrics and autoscaling.

    ``oldest_age_s`` is the age of the oldest ready message (from its
    ``message_timestamp``, when it was first enqueued), None when none is ready;
    ``delayed_due`` counts the delayed messages due within the horizon
    :func:`queue_stats` was asked for.
    """

    queue: str
    ready: int
    in_flight: int
    delayed: int
    dead: int
    oldest_age_s: float | None
    delayed_due: int

    @property
    def backlog(self) -> int:
        """What workers must absorb: see :func:`backlog`."""
        return self.ready + self.in_flight + self.delayed_due


def queue_depths(broker: RedisBroker, queues: list[str]) -> list[QueueDepth]:
    """Depth of each of *queues*, in one round trip."""
    keys = RedisKeys(broker.namespace)
    with broker.client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(keys.queue(queue))
            pipe.hlen(keys.messages(queue))
            pipe.hlen(keys.delayed_messages(queue))
            pipe.zcard(keys.dead(queue))
        values = pipe.execute()
    depths = []
    for index, queue in enumerate(queues):
        ready, stored, delayed, dead = values[index * 4 : index * 4 + 4]
        depths.append(QueueDepth(queue, ready, max(stored - ready, 0), delayed, dead))
    return depths


def queue_stats(broker: RedisBroker, queues: Iterable[str], *, due_within_s: float = DUE_SOON_S) -> list[QueueStats]:
    """The state of each of *queues*, in two round trips.

    Parameters:
      due_within_s: Delayed messages due within this many seconds are counted in
        ``delayed_due`` (and so in the backlog).
    """
    names = list(queues)
    keys = RedisKeys(broker.namespace)
    now_ms = int(time.time() * 1000)
    due_by = broker.client.register_script(_DUE_BY)
    with broker.client.pipeline(transaction=False) as pipe:
        for queue in names:
            pipe.llen(keys.queue(queue))
            pipe.hlen(keys.messages(queue))
            pipe.hlen(keys.delayed_messages(queue))
            pipe.zcard(keys.dead(queue))
            pipe.lindex(keys.queue(queue), 0)
            due_by(keys=[keys.delayed_messages(queue)], args=[now_ms + int(due_within_s * 1000)], client=pipe)
        values = pipe.execute()
    rows = [values[index * 6 : index * 6 + 6] for index in range(len(names))]
    with broker.client.pipeline(transaction=False) as pipe:
        for queue, row in zip(names, rows, strict=True):
            if row[4] is None:
                pipe.echo("")
            else:
                pipe.hget(keys.messages(queue), row[4])
        oldest_bodies = pipe.execute()
    stats = []
    for queue, row, body in zip(names, rows, oldest_bodies, strict=True):
        ready, stored, delayed, dead, _, due = row
        stats.append(
            QueueStats(
                queue=queue,
                ready=ready,
                in_flight=max(stored - ready, 0),
                delayed=delayed,
                dead=dead,
                oldest_age_s=_age_s(body, now_ms),
                delayed_due=int(due),
            )
        )
    return stats


def _age_s(body: bytes | None, now_ms: int) -> float | None:
    if not body:
        return None
    try:
        timestamp = json.loads(body)["message_timestamp"]
    except (ValueError, KeyError, TypeError):
        return None
    return max(now_ms - int(timestamp), 0) / 1000


def backlog(stats: QueueStats | Iterable[QueueStats]) -> int:
    """The work a worker pool must absorb for *stats* (one queue or a pool's queues).

    Ready plus in flight (prefetched or running: they occupy workers now) plus the
    delayed messages due soon (``delayed_due``: retries and delayed sends about to
    become ready will need a worker within the horizon). Delayed messages due later
    are left out: a retry scheduled in 25 s should not scale the pool up now.
    """
    if isinstance(stats, QueueStats):
        return stats.backlog
    return sum(item.backlog for item in stats)


def live_workers(broker: RedisBroker) -> int:
    """Worker processes that sent a heartbeat within the broker's heartbeat timeout."""
    now_ms = int(time.time() * 1000)
    heartbeats = RedisKeys(broker.namespace).heartbeats()
    return int(broker.client.zcount(heartbeats, now_ms - broker.heartbeat_timeout, "+inf"))
