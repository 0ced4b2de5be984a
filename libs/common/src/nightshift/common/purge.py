"""Purging a queue: dropping its ready messages, never those a worker holds."""

from __future__ import annotations

from dramatiq.brokers.redis import RedisBroker

from nightshift.common.redis_keys import RedisKeys

#: Removes the ready ids of KEYS[1] and their bodies in KEYS[2] atomically, in chunks
#: (``unpack`` has a limit); returns how many. Fetched (in-flight) messages are not in
#: the list, so they are untouched and are acked as usual.
_PURGE = """
local ids = redis.call("lrange", KEYS[1], 0, -1)
redis.call("del", KEYS[1])
for i = 1, #ids, 5000 do
    redis.call("hdel", KEYS[2], unpack(ids, i, math.min(i + 4999, #ids)))
end
return #ids
"""


def purge_queue(broker: RedisBroker, queue_name: str) -> int:
    """Delete every ready message of *queue_name*; return how many.

    Messages in flight (prefetched or running), delayed ones and dead letters stay.
    """
    keys = RedisKeys(broker.namespace)
    script = broker.client.register_script(_PURGE)
    return int(script(keys=[keys.queue(queue_name), keys.messages(queue_name)]))
