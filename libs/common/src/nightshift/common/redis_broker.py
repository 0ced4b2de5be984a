"""Dramatiq's Redis broker, with prompt idle pickup and safe handling of bad bodies.

Two things differ from :class:`dramatiq.brokers.redis.RedisBroker`:

* An idle consumer does not poll with a growing sleep (up to a second); it
  blocks on a per-queue *wake list* that every enqueue pushes to, so it reacts
  within milliseconds while sending Redis one blocking command per idle second.
* A fetched body that cannot be decoded is moved to the queue's dead letters
  with its reason instead of breaking the consumer and stranding its
  neighbours in the ack set.

Its consumer also keeps Dramatiq's consumer contract more strictly than
Dramatiq's own: ``__next__`` returns ``None`` only when no message was
available (never right after a fetch), and closing the consumer requeues
everything it fetched but did not hand out, so a stopped worker leaves
nothing in its ack sets. An idle wait never outlasts the client's
``socket_timeout``.

Maintenance (requeueing the messages of dead workers) is not left to chance
here: :class:`nightshift.common.middleware.liveness.WorkerLiveness` runs it on a timer.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from nightshift.common import dead_letters
from nightshift.common.errors import UndecodableMessage
from nightshift.common.redis_keys import RedisKeys

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from nightshift.common.records import RecordWriter

#: At most this many wake tokens are kept per queue (enough to wake that many idle consumers).
WAKE_TOKENS = 32

#: Delay-queue consumers hold delayed messages in memory and release them when
#: due; they wait at most this long so an eta is never missed by more.
DELAY_QUEUE_WAIT_MS = 100

#: An idle wait lasts at most this share of the client's ``socket_timeout``,
#: so Redis's reply (``BLPOP`` timing out) arrives before the socket gives up.
SOCKET_TIMEOUT_SHARE = 0.5

_ENQUEUE = """
-- KEYS: queue list, queue messages hash, wake list
-- ARGV: message id, message data, wake tokens kept
redis.call("hset", KEYS[2], ARGV[1], ARGV[2])
redis.call("rpush", KEYS[1], ARGV[1])
redis.call("rpush", KEYS[3], "1")
redis.call("ltrim", KEYS[3], -tonumber(ARGV[3]), -1)
redis.call("pexpire", KEYS[3], 60000)
"""

_FETCH = """
-- KEYS: queue list, queue messages hash, this worker's ack set for the queue, heartbeats
-- ARGV: how many, worker id, now (ms)
redis.call("zadd", KEYS[4], ARGV[3], ARGV[2])
local ids = {}
for i = 1, tonumber(ARGV[1]) do
    local id = redis.call("lpop", KEYS[1])
    if not id then break end
    ids[i] = id
    redis.call("sadd", KEYS[3], id)
end
if #ids == 0 then return {} end
local bodies = redis.call("hmget", KEYS[2], unpack(ids))
local out = {}
for i = 1, #ids do
    out[2 * i - 1] = ids[i]
    out[2 * i] = bodies[i] or ""
end
return out
"""


class MalformedMessage(ValueError):
    """A decoded body whose fields have the wrong types, or that names another queue."""


def check_shape(message: Message[Any], queue_name: str) -> None:
    """Check the field types of a decoded *message* fetched from *queue_name*.

    Dramatiq's worker trusts them: a body naming another queue kills the worker
    thread that handles it, and a message id that is not a UUID stops the job
    records' batch it lands in. Such a body is refused here, before any of that.

    Raises:
      MalformedMessage: Naming the first field that is wrong (never its value).
    """
    if message.queue_name != queue_name:
        raise MalformedMessage(f"it names another queue than {queue_name!r}")
    for name, kind in (("actor_name", str), ("args", list | tuple), ("kwargs", dict), ("options", dict)):
        if not isinstance(getattr(message, name), kind):
            raise MalformedMessage(f"its {name} is not a {kind}")
    timestamp = message.message_timestamp
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise MalformedMessage("its message_timestamp is not an integer")
    try:
        uuid.UUID(message.message_id)
    except (TypeError, ValueError, AttributeError):
        raise MalformedMessage("its message_id is not a UUID") from None


class NightshiftRedisBroker(RedisBroker):
    """A :class:`RedisBroker` whose consumers wake on enqueue (see the module doc)."""

    #: Set by :func:`nightshift.common.broker.build_broker`.
    metrics_registry: CollectorRegistry
    #: Where the job records go; closed with the broker. Set by
    #: :func:`nightshift.common.broker.build_broker` (absent on a bare broker).
    record_writer: RecordWriter

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_chance", 0)
        super().__init__(**kwargs)
        self.keys = RedisKeys(self.namespace)
        self._enqueue_script = self.client.register_script(_ENQUEUE)
        self._fetch_script = self.client.register_script(_FETCH)
        socket_timeout = self.client.connection_pool.connection_kwargs.get("socket_timeout")
        #: The longest idle wait the client's socket allows, in seconds (None: no limit).
        self.max_wait_s: float | None = socket_timeout * SOCKET_TIMEOUT_SHARE if socket_timeout else None

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return WakingConsumer

    def key(self, name: str) -> str:
        """The Redis key of *name* in this broker's namespace."""
        return self.keys.key(name)

    def close(self) -> None:
        """Flush and stop the record writer, then drop the Redis connections.

        One call is enough at shutdown: the records buffered by this process are
        written (or logged as lost) before it returns. The broker reconnects if
        it is used again.
        """
        writer: RecordWriter | None = getattr(self, "record_writer", None)
        if writer is not None:
            writer.close()
        self.client.connection_pool.disconnect()

    def do_enqueue(self, queue_name: str, message_id: str, data: bytes) -> None:
        keys = self.keys
        self._enqueue_script(
            keys=[keys.queue(queue_name), keys.messages(queue_name), keys.wake(queue_name)],
            args=[message_id, data, WAKE_TOKENS],
        )

    def fetch(self, queue_name: str, count: int) -> list[tuple[str, bytes]]:
        """Move up to *count* message ids into this worker's ack set; return (id, body) pairs."""
        keys = self.keys
        flat = self._fetch_script(
            keys=[
                keys.queue(queue_name),
                keys.messages(queue_name),
                keys.acks(self.broker_id, queue_name),
                keys.heartbeats(),
            ],
            args=[min(count, self._max_unpack_size()), self.broker_id, current_millis()],
        )
        return [(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]

    def wait_for_work(self, queue_name: str, timeout_ms: int) -> None:
        """Block until something is enqueued on *queue_name* or *timeout_ms* passes.

        The wait is cut to :data:`SOCKET_TIMEOUT_SHARE` of the client's
        ``socket_timeout``; should Redis answer late anyway, the socket's
        timeout counts as "no work yet", not as a broken connection.
        """
        timeout_s = max(timeout_ms, 1) / 1000
        if self.max_wait_s is not None:
            timeout_s = max(min(timeout_s, self.max_wait_s), 0.001)
        try:
            self.client.blpop([self.keys.wake(queue_name)], timeout=timeout_s)
        except redis.TimeoutError:
            self.logger.debug("Idle wait on %s outlasted the socket timeout.", queue_name)

    def heartbeat(self) -> None:
        """Tell other workers this process is alive."""
        self.client.zadd(self.keys.heartbeats(), {self.broker_id: current_millis()})

    def recover(self, queue_name: str) -> None:
        """Requeue *queue_name* messages held by dead workers; expire old dead letters."""
        self._dispatch("maintenance")(queue_name)

    def _should_do_maintenance(self, command: str) -> int:
        return int(command == "maintenance")


class WakingConsumer(_RedisConsumer):  # type: ignore[misc]
    """A consumer that blocks on the queue's wake list instead of sleeping."""

    broker: NightshiftRedisBroker

    def __init__(self, broker: NightshiftRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self._slot_freed = threading.Event()
        self._wait_ms = min(timeout, DELAY_QUEUE_WAIT_MS) if queue_name.endswith(".DQ") else timeout

    def ack(self, message: MessageProxy) -> None:
        super().ack(message)
        self._slot_freed.set()

    def nack(self, message: MessageProxy) -> None:
        super().nack(message)
        self._slot_freed.set()

    def __next__(self) -> MessageProxy | None:
        """The next message, or None when none was available within the wait.

        None is a point where Dramatiq's consumer thread may stop, so it is
        never returned while a fetched message waits in :attr:`message_cache`.
        """
        try:
            message = self._next_cached()
            if message is not None:
                return message
            # Cleared before counting, so an ack landing in between still wakes the wait.
            self._slot_freed.clear()
            free = self.prefetch - self.outstanding_message_count
            if free <= 0:
                # Every prefetched message is still being worked on: wait for an
                # ack to free a slot rather than asking Redis for more.
                self._slot_freed.wait(self._wait_ms / 1000)
                return None
            self.message_cache = self.broker.fetch(self.queue_name, free)
            if self.message_cache:
                # None only if every fetched body was undecodable (and dead-lettered).
                return self._next_cached()
            self.broker.wait_for_work(self.queue_name, self._wait_ms)
            return None
        except redis.ConnectionError as error:
            raise ConnectionClosed(error) from None

    def close(self) -> None:
        """Requeue, at once, every message fetched but not handed out.

        Dramatiq requeues what its worker holds in memory when it stops; what
        is still in this consumer's cache is only known here.

        Raises:
          ConnectionClosed: When Redis cannot be reached (the messages then
            wait in the ack set for the recovery of dead workers' messages).
        """
        cached, self.message_cache = self.message_cache, []
        if not cached:
            return
        redis_ids = [redis_id for redis_id, _ in cached]
        self.logger.debug("Requeueing %d fetched message(s) on %s.", len(redis_ids), self.queue_name)
        try:
            self.broker.do_requeue(self.queue_name, *redis_ids)
        except redis.ConnectionError as error:
            raise ConnectionClosed(error) from None

    def _next_cached(self) -> MessageProxy | None:
        while self.message_cache:
            redis_id, body = self.message_cache.pop(0)
            message = self._decode(redis_id, body)
            if message is not None:
                self.queued_message_ids.add(message.message_id)
                return MessageProxy(message)
        return None

    def _decode(self, redis_id: str, body: bytes) -> Message[Any] | None:
        try:
            message = Message.decode(body)
            check_shape(message, self.queue_name)
            message.options.setdefault("redis_message_id", redis_id)
            return message
        except Exception as error:
            # Never log or keep the body: it is unknown data, possibly personal.
            if isinstance(error, MalformedMessage):
                reason = f"body of {len(body)} bytes is not a valid message: {error}"
            else:
                reason = f"body of {len(body)} bytes is not a Dramatiq message ({type(error).__name__})"
            self.broker.do_nack(self.queue_name, redis_id)
            dead_letters.record_reason(
                self.broker, q_name(self.queue_name), redis_id, UndecodableMessage.__name__, reason
            )
            self.logger.error("Dead-lettered undecodable message %s on %s: %s", redis_id, self.queue_name, reason)
            return None
