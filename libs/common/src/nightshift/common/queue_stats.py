"""Queue depths and live workers, read straight from the broker's Redis keys.

``LLEN`` alone misses prefetched and running work, so depth is split into
ready (the list), in flight (stored but not in the list), delayed (the
``.DQ`` hash) and dead (the ``.XQ`` sorted set).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dramatiq.brokers.redis import RedisBroker

from nightshift.common.redis_keys import RedisKeys


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    ready: int
    in_flight: int
    delayed: int
    dead: int


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


def live_workers(broker: RedisBroker) -> int:
    """Worker processes that sent a heartbeat within the broker's heartbeat timeout."""
    now_ms = int(time.time() * 1000)
    heartbeats = RedisKeys(broker.namespace).heartbeats()
    return int(broker.client.zcount(heartbeats, now_ms - broker.heartbeat_timeout, "+inf"))
