"""Dramatiq's Redis broker, with prompt idle pickup and safe handling of bad bodies.

What differs from :class:`dramatiq.brokers.redis.RedisBroker`:

* An idle consumer does not poll with a growing sleep (up to a second). Every
  enqueue pushes a token to a per-queue *wake list*; one thread per broker
  (the :class:`WakeHub`) blocks on the wake lists of every idle consumer at
  once and wakes the one whose queue got work, so an idle process reacts
  within milliseconds while sending Redis about one command per second.
* Acks are not a round trip each: a worker thread hands the message to its
  consumer, whose next fetch acks everything handed back since in the same
  script call (or acks alone, when it has nothing to fetch). A clean stop
  flushes them; a crash leaves them in the ack set, where the recovery of dead
  workers' messages finds them (at-least-once, as before); a consumer restarted
  after a connection error sends those its predecessor could not.
* A fetched body that cannot be decoded is moved to the queue's dead letters
  with its reason instead of breaking the consumer and stranding its
  neighbours in the ack set.
* Middleware hooks are dispatched only to the middleware that define them
  (Dramatiq calls every middleware's inherited no-op for every signal).

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
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from dramatiq.middleware import Middleware, MiddlewareError

from nightshift.common import dead_letters
from nightshift.common.errors import UndecodableMessage
from nightshift.common.redis_keys import RedisKeys

#: redis-py's socket timeout when none is given (None where it has no default).
_DEFAULT_SOCKET_TIMEOUT: float | None = getattr(redis.connection, "DEFAULT_SOCKET_TIMEOUT", None)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from nightshift.common.records import RecordWriter

#: At most this many wake tokens are kept per queue (enough to wake that many idle consumers).
WAKE_TOKENS = 32

#: The wake hub's longest block; when it ends without a token, the hub looks at the
#: queues of its idle consumers itself, so a message that arrived without a token
#: (requeued by the recovery of a dead worker's messages) waits at most this long.
HUB_WAIT_S = 5.0

#: An idle wait lasts at most this share of the client's ``socket_timeout``,
#: so Redis's reply (``BLPOP`` timing out) arrives before the socket gives up.
SOCKET_TIMEOUT_SHARE = 0.5

#: :meth:`NightshiftRedisBroker.enqueue_many` sends at most this many messages per round trip
#: (one script call per queue, so Redis is never blocked long by one).
ENQUEUE_BATCH = 1000

#: Dead workers are looked for at every heartbeat; without one, a queue's
#: recovery (which also expires its old dead letters) runs this often.
RECOVERY_SWEEP_S = 60.0

#: A heartbeat's finding about dead workers is trusted for this long.
HEARTBEAT_FRESH_S = 5.0

_ENQUEUE = """
-- KEYS: queue list, queue messages hash, wake list
-- ARGV: message id, message data, wake tokens kept
redis.call("hset", KEYS[2], ARGV[1], ARGV[2])
redis.call("rpush", KEYS[1], ARGV[1])
redis.call("rpush", KEYS[3], "1")
redis.call("ltrim", KEYS[3], -tonumber(ARGV[3]), -1)
redis.call("pexpire", KEYS[3], 60000)
"""

_ENQUEUE_MANY = """
-- KEYS: queue list, queue messages hash, wake list
-- ARGV: wake tokens kept, then message id and data, pair after pair
local ids, fields, n = {}, {}, 0
for i = 2, #ARGV, 2 do
    n = n + 1
    ids[n] = ARGV[i]
    fields[2 * n - 1] = ARGV[i]
    fields[2 * n] = ARGV[i + 1]
end
redis.call("hset", KEYS[2], unpack(fields))
redis.call("rpush", KEYS[1], unpack(ids))
local tokens = {}
for i = 1, math.min(n, tonumber(ARGV[1])) do tokens[i] = "1" end
redis.call("rpush", KEYS[3], unpack(tokens))
redis.call("ltrim", KEYS[3], -tonumber(ARGV[1]), -1)
redis.call("pexpire", KEYS[3], 60000)
"""

_ACK_AND_FETCH = """
-- KEYS: queue list, queue messages hash, this worker's ack set for the queue, heartbeats
-- ARGV: how many to fetch (0: only ack), worker id, now (ms), then the ids to ack
for i = 4, #ARGV do
    if redis.call("srem", KEYS[3], ARGV[i]) > 0 then
        redis.call("hdel", KEYS[2], ARGV[i])
    end
end
local count = tonumber(ARGV[1])
if count == 0 then return {} end
redis.call("zadd", KEYS[4], ARGV[3], ARGV[2])
local ids = redis.call("lpop", KEYS[1], count)
if not ids then return {} end
redis.call("sadd", KEYS[3], unpack(ids))
local bodies = redis.call("hmget", KEYS[2], unpack(ids))
local out = {}
for i = 1, #ids do
    out[2 * i - 1] = ids[i]
    out[2 * i] = bodies[i] or ""
end
return out
"""

#: Dramatiq's no-op hooks, by name: a middleware whose hook is one of these is skipped.
_NO_OP_HOOKS = {name: getattr(Middleware, name) for name in dir(Middleware) if name.startswith(("before_", "after_"))}


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
        UUID(message.message_id)
    except (TypeError, ValueError, AttributeError):
        raise MalformedMessage("its message_id is not a UUID") from None


class NightshiftRedisBroker(RedisBroker):
    """A :class:`RedisBroker` whose consumers wake on enqueue and batch their acks (see the module doc)."""

    #: Set by :func:`nightshift.common.broker.build_broker`.
    metrics_registry: CollectorRegistry
    #: Where the job records go; closed with the broker. Set by
    #: :func:`nightshift.common.broker.build_broker` (absent on a bare broker).
    record_writer: RecordWriter

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_chance", 0)
        self._hooks: dict[str, list[Callable[..., Any]]] = {}
        self._hooks_of: tuple[int, int] = (0, -1)
        super().__init__(**kwargs)
        self.keys = RedisKeys(self.namespace)
        self._enqueue_script = self.client.register_script(_ENQUEUE)
        self._enqueue_many_script = self.client.register_script(_ENQUEUE_MANY)
        self._fetch_script = self.client.register_script(_ACK_AND_FETCH)
        connection_kwargs = self.client.connection_pool.connection_kwargs
        # Not given, redis-py's own default applies (5 s in redis-py 8), not "no limit".
        socket_timeout = connection_kwargs.get("socket_timeout", _DEFAULT_SOCKET_TIMEOUT)
        #: The longest idle wait the client's socket allows, in seconds (None: no limit).
        self.max_wait_s: float | None = socket_timeout * SOCKET_TIMEOUT_SHARE if socket_timeout else None
        self.hub = WakeHub(self)
        self._pending_acks: dict[str, deque[str]] = {}
        #: When the last heartbeat ran (monotonic seconds) and whether it saw a dead worker.
        self._beat: tuple[float, bool] = (float("-inf"), True)
        #: When each queue's recovery last ran (monotonic seconds).
        self._recovered: dict[str, float] = {}

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return WakingConsumer

    def pending_acks(self, queue_name: str) -> deque[str]:
        """The Redis ids of *queue_name* messages handed back but not acked in Redis yet.

        Kept by the broker, not by one consumer: a consumer restarted after a
        connection error sends the acks its predecessor could not.
        """
        return self._pending_acks.setdefault(queue_name, deque())

    def key(self, name: str) -> str:
        """The Redis key of *name* in this broker's namespace."""
        return self.keys.key(name)

    def close(self) -> None:
        """Flush and stop the record writer, then drop the Redis connections.

        One call is enough at shutdown: the records buffered by this process are
        written (or logged as lost) before it returns. The broker reconnects if
        it is used again.
        """
        self.hub.stop()
        writer: RecordWriter | None = getattr(self, "record_writer", None)
        if writer is not None:
            writer.close()
        self.client.connection_pool.disconnect()

    # --- middleware dispatch ------------------------------------------------------------

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        self._emit(self._hooks_for("before_" + signal), args, kwargs)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        self._emit(self._hooks_for("after_" + signal), args, kwargs)

    def _emit(self, hooks: list[Callable[..., Any]], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for hook in hooks:
            try:
                hook(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s.", hook, exc_info=True)

    def _hooks_for(self, name: str) -> list[Callable[..., Any]]:
        """The bound hooks *name* of the middleware that define it, in Dramatiq's order.

        Rebuilt whenever the middleware list changes (``add_middleware`` appends or inserts).
        """
        middleware = self.middleware
        if self._hooks_of != (id(middleware), len(middleware)):
            self._hooks = {}
            self._hooks_of = (id(middleware), len(middleware))
        hooks = self._hooks.get(name)
        if hooks is None:
            no_op = _NO_OP_HOOKS.get(name)
            ordered = middleware if name.startswith("before_") else list(reversed(middleware))
            hooks = [
                getattr(m, name)
                for m in ordered
                if no_op is None or getattr(getattr(m, name), "__func__", None) is not no_op
            ]
            self._hooks[name] = hooks
        return hooks

    # --- Redis --------------------------------------------------------------------------

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        """Enqueue *message* (on its delay queue after *delay* ms), as Dramatiq's broker does.

        The same steps and hooks as :meth:`RedisBroker.enqueue`, with the copy and the
        encoding done directly (Dramatiq's go through ``dataclasses`` introspection).
        """
        message = self._stamped(message, delay)
        self.emit_before("enqueue", message, delay)
        self.do_enqueue(message.queue_name, message.options["redis_message_id"], _encode(message))
        self.emit_after("enqueue", message, delay)
        return message

    def _stamped(self, message: Message[Any], delay: int | None) -> Message[Any]:
        """A copy of *message* with its own Redis id (each enqueue, a retry's too, needs one), and its eta."""
        options = {**message.options, "redis_message_id": str(uuid4())}
        queue_name = message.queue_name
        if delay is not None:
            queue_name = dq_name(queue_name)
            options["eta"] = current_millis() + delay
        return Message(
            queue_name,
            message.actor_name,
            message.args,
            message.kwargs,
            options,
            message.message_id,
            message.message_timestamp,
        )

    def do_enqueue(self, queue_name: str, message_id: str, data: bytes) -> None:
        keys = self.keys
        self._enqueue_script(
            keys=[keys.queue(queue_name), keys.messages(queue_name), keys.wake(queue_name)],
            args=[message_id, data, WAKE_TOKENS],
        )

    def enqueue_many(self, messages: Sequence[Message[Any]]) -> list[Message[Any]]:
        """Enqueue *messages* (no delay) with one round trip per :data:`ENQUEUE_BATCH`.

        Each message goes through the middleware's enqueue hooks exactly as with
        :meth:`enqueue`; the before-hooks of a batch all run before it is sent, the
        after-hooks once Redis has it.

        Returns:
          The enqueued messages (with their Redis ids), in order.
        """
        sent: list[Message[Any]] = []
        for start in range(0, len(messages), ENQUEUE_BATCH):
            batch = [
                m.copy(options={"redis_message_id": str(uuid4())}) for m in messages[start : start + ENQUEUE_BATCH]
            ]
            for message in batch:
                self.emit_before("enqueue", message, None)
            self._send_enqueues(batch)
            for message in batch:
                self.emit_after("enqueue", message, None)
            sent.extend(batch)
        return sent

    def _send_enqueues(self, batch: list[Message[Any]]) -> None:
        """One script call per queue in the batch, all in one pipeline: one round trip.

        The script is loaded again if Redis lost it (a restart, ``SCRIPT FLUSH``).
        """
        by_queue: dict[str, list[bytes | str]] = {}
        for message in batch:
            by_queue.setdefault(message.queue_name, []).extend((message.options["redis_message_id"], _encode(message)))
        keys = self.keys
        sha: str = self._enqueue_many_script.sha  # type: ignore[union-attr]
        for attempt in (1, 2):
            with self.client.pipeline(transaction=False) as pipe:
                for queue_name, pairs in by_queue.items():
                    queue_keys = (keys.queue(queue_name), keys.messages(queue_name), keys.wake(queue_name))
                    pipe.evalsha(sha, 3, *queue_keys, WAKE_TOKENS, *pairs)
                try:
                    pipe.execute()
                    return
                except redis.exceptions.NoScriptError:
                    # Nothing ran (Redis's script cache is global): load it and send again.
                    if attempt == 2:
                        raise
                    self.client.script_load(_ENQUEUE_MANY)

    def fetch(self, queue_name: str, count: int, acks: Iterable[str] = ()) -> list[tuple[str, bytes]]:
        """Ack *acks*, then move up to *count* message ids into this worker's ack set; return (id, body) pairs.

        One script call. With *count* 0 it only acks.
        """
        keys = self.keys
        flat = self._fetch_script(
            keys=[
                keys.queue(queue_name),
                keys.messages(queue_name),
                keys.acks(self.broker_id, queue_name),
                keys.heartbeats(),
            ],
            args=[min(count, self._max_unpack_size()), self.broker_id, current_millis(), *acks],
        )
        return [(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]

    def wait_for_work(self, queue_name: str, timeout_ms: int) -> None:
        """Block until something is enqueued on *queue_name* or *timeout_ms* passes.

        One ``BLPOP`` on the queue's wake list, for callers outside a consumer
        (a consumer waits on the :class:`WakeHub`). The wait is cut to
        :data:`SOCKET_TIMEOUT_SHARE` of the client's ``socket_timeout``; should
        Redis answer late anyway, the socket's timeout counts as "no work yet",
        not as a broken connection.
        """
        try:
            self.client.blpop([self.keys.wake(queue_name)], timeout=self.bounded_wait_s(timeout_ms / 1000))
        except redis.TimeoutError:
            self.logger.debug("Idle wait on %s outlasted the socket timeout.", queue_name)

    def bounded_wait_s(self, timeout_s: float) -> float:
        """*timeout_s* cut to what the client's socket allows (at least a millisecond)."""
        timeout_s = max(timeout_s, 0.001)
        if self.max_wait_s is not None:
            timeout_s = max(min(timeout_s, self.max_wait_s), 0.001)
        return timeout_s

    def heartbeat(self) -> None:
        """Tell other workers this process is alive, and note whether any worker looks dead."""
        now = current_millis()
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.heartbeats(), {self.broker_id: now})
            pipe.zcount(self.keys.heartbeats(), 0, now - self.heartbeat_timeout)
            _, dead = pipe.execute()
        self._beat = (time.monotonic(), int(dead) > 0)

    def recover(self, queue_name: str) -> None:
        """Requeue *queue_name* messages held by dead workers; expire old dead letters.

        Skipped (no Redis call) when the last :meth:`heartbeat`, less than
        :data:`HEARTBEAT_FRESH_S` ago, saw no dead worker and the queue's
        recovery ran within :data:`RECOVERY_SWEEP_S`.
        """
        now = time.monotonic()
        beat_at, dead_seen = self._beat
        fresh = now - beat_at < HEARTBEAT_FRESH_S
        if fresh and not dead_seen and now - self._recovered.get(queue_name, float("-inf")) < RECOVERY_SWEEP_S:
            return
        self._dispatch("maintenance")(queue_name)
        self._recovered[queue_name] = now

    def _should_do_maintenance(self, command: str) -> int:
        return int(command == "maintenance")


def _encode(message: Message[Any]) -> bytes:
    """``message.encode()``, the fields listed rather than found by ``dataclasses.fields``."""
    return dramatiq.get_encoder().encode(
        {
            "queue_name": message.queue_name,
            "actor_name": message.actor_name,
            "args": message.args,
            "kwargs": message.kwargs,
            "options": message.options,
            "message_id": message.message_id,
            "message_timestamp": message.message_timestamp,
        }
    )


class WakeHub:
    """One blocking ``BLPOP`` for every idle consumer of a broker.

    An idle consumer calls :meth:`wait`; the hub's thread blocks on the wake
    lists of the queues of all waiting consumers (and on a list of its own, to
    hear of a new queue at once) and sets the event of the consumers whose
    queue got a token. When a block ends without a token (every
    :data:`HUB_WAIT_S`), it checks the length of those queues in one round
    trip and wakes the consumers of those that hold messages.

    Parameters:
      broker: Whose client and keys it uses.
    """

    def __init__(self, broker: NightshiftRedisBroker) -> None:
        self.broker = broker
        self._lock = threading.Condition()
        self._waiting: dict[str, set[WakingConsumer]] = {}
        #: Queues whose token came while none of their consumers waited: the next to wait fetches at once.
        self._missed: set[str] = set()
        self._watched: frozenset[str] = frozenset()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._interrupt_key = broker.keys.key(f"__wake__.{broker.broker_id}")

    def wait(self, consumer: WakingConsumer, timeout_s: float) -> None:
        """Block until *consumer*'s event is set (a token, an ack) or *timeout_s* passes."""
        queue = consumer.queue_name
        with self._lock:
            if queue in self._missed:
                self._missed.discard(queue)
                consumer.work_hint = True
                return
            self._waiting.setdefault(queue, set()).add(consumer)
            new_queue = queue not in self._watched
            self._ensure_started()
            self._lock.notify()
        try:
            if new_queue and self._watched:
                self._interrupt()  # the hub blocks on other lists: let it add this one now
            consumer.wake_event.wait(timeout_s)
        finally:
            with self._lock:
                waiting = self._waiting.get(queue)
                if waiting is not None:
                    waiting.discard(consumer)
                    if not waiting:
                        del self._waiting[queue]

    def stop(self) -> None:
        """Stop the hub's thread (it ends within :data:`HUB_WAIT_S`)."""
        with self._lock:
            self._stopped = True
            self._lock.notify()

    def _ensure_started(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="nightshift-wake-hub", daemon=True)
            self._thread.start()

    def _interrupt(self) -> None:
        try:
            with self.broker.client.pipeline(transaction=False) as pipe:
                pipe.rpush(self._interrupt_key, "1")
                pipe.pexpire(self._interrupt_key, 60_000)
                pipe.execute()
        except redis.RedisError:
            self.broker.logger.debug("Could not interrupt the wake hub.", exc_info=True)

    def _run(self) -> None:
        keys = self.broker.keys
        swept = time.monotonic()
        while True:
            with self._lock:
                while not self._waiting and not self._stopped:
                    self._watched = frozenset()
                    self._lock.wait()
                if self._stopped:
                    return
                queues = frozenset(self._waiting)
                self._watched = queues
            by_key = {keys.wake(queue): queue for queue in queues}
            try:
                popped = self.broker.client.blpop(
                    [*by_key, self._interrupt_key], timeout=self.broker.bounded_wait_s(HUB_WAIT_S)
                )
            except redis.TimeoutError:
                popped = None
            except redis.RedisError:
                if self._stopped:
                    return  # the broker closed its connections under the wait
                self.broker.logger.warning("The wake hub lost Redis; retrying in a second.", exc_info=True)
                self._wake(queues)  # the consumers find out for themselves
                time.sleep(1)
                continue
            if popped is not None:
                queue = by_key.get(popped[0].decode())
                if queue is not None:
                    self._wake([queue])
            if time.monotonic() - swept >= HUB_WAIT_S:
                swept = time.monotonic()
                self._sweep(queues)

    def _sweep(self, queues: frozenset[str]) -> None:
        """Wake the consumers of the *queues* that hold messages although no token said so.

        One ``EXISTS`` over all of them (Redis deletes an empty list); their
        lengths only when one holds something.
        """
        ordered = sorted(queues)
        try:
            if not ordered or not self.broker.client.exists(*(self.broker.keys.queue(q) for q in ordered)):
                return
            with self.broker.client.pipeline(transaction=False) as pipe:
                for queue in ordered:
                    pipe.llen(self.broker.keys.queue(queue))
                lengths = pipe.execute()
        except redis.RedisError:
            return
        self._wake([queue for queue, length in zip(ordered, lengths, strict=True) if length])

    def _wake(self, queues: Iterable[str]) -> None:
        with self._lock:
            consumers: list[WakingConsumer] = []
            for queue in queues:
                waiting = self._waiting.get(queue)
                if waiting:
                    consumers.extend(waiting)
                else:
                    self._missed.add(queue)
        for consumer in consumers:
            consumer.work_hint = True
            consumer.wake_event.set()


class WakingConsumer(_RedisConsumer):  # type: ignore[misc]
    """A consumer that waits on the broker's :class:`WakeHub` when idle and batches its acks."""

    broker: NightshiftRedisBroker

    def __init__(self, broker: NightshiftRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        #: Set by an ack or nack (a slot is free, an ack is to send) and by the hub (work).
        self.wake_event = threading.Event()
        #: Set by the hub: this queue may hold messages.
        self.work_hint = False
        self._acks = broker.pending_acks(queue_name)
        self._idle = False
        self._closed = False
        self._wait_s = timeout / 1000

    def ack(self, message: MessageProxy) -> None:
        """Hand *message* back: its ack goes with this consumer's next call to Redis."""
        if self._closed:
            super().ack(message)
            return
        self._acks.append(message.options["redis_message_id"])
        self.queued_message_ids.discard(message.message_id)
        self.wake_event.set()

    def nack(self, message: MessageProxy) -> None:
        super().nack(message)
        self.wake_event.set()

    def __next__(self) -> MessageProxy | None:
        """The next message, or None when none was available within the wait.

        None is a point where Dramatiq's consumer thread may stop, so it is
        never returned while a fetched message waits in :attr:`message_cache`.
        """
        try:
            message = self._next_cached()
            if message is not None:
                return message
            # Cleared before looking, so an ack or a token landing in between still wakes the wait.
            self.wake_event.clear()
            acks = self._take_acks()
            free = self.prefetch - self.outstanding_message_count
            if self.work_hint:
                self.work_hint = False
                self._idle = False
            if free <= 0 or self._idle:
                if acks:
                    self._send(0, acks)
                    return None
                self._wait(free > 0)
                if not self.work_hint:
                    return None
                # Woken by work: fetch now, rather than on the next call.
                self.work_hint = False
                self._idle = False
                acks = self._take_acks()
                free = self.prefetch - self.outstanding_message_count
            self.message_cache = self._send(free, acks)
            if self.message_cache:
                # None only if every fetched body was undecodable (and dead-lettered).
                return self._next_cached()
            self._idle = True
            return None
        except (redis.ConnectionError, redis.TimeoutError) as error:
            # A stalled connection (socket timeout) is a connection error too: Dramatiq restarts
            # the consumer after it, where any other exception would end the consumer thread.
            raise ConnectionClosed(error) from None

    def close(self) -> None:
        """Send the acks not sent yet, then requeue, at once, every message fetched but not handed out.

        Dramatiq requeues what its worker holds in memory when it stops; what
        is still in this consumer's cache is only known here.

        Raises:
          ConnectionClosed: When Redis cannot be reached or does not answer in
            time (the messages then wait in the ack set for the recovery of dead
            workers' messages). Never a bare Redis error: Dramatiq closes the
            consumer inside its own error handling, and anything but
            ``ConnectionClosed`` escaping there ends the consumer thread for good.
        """
        self._closed = True
        cached, self.message_cache = self.message_cache, []
        try:
            acks = self._take_acks()
            if acks:
                self._send(0, acks)
            if not cached:
                return
            redis_ids = [redis_id for redis_id, _ in cached]
            self.logger.debug("Requeueing %d fetched message(s) on %s.", len(redis_ids), self.queue_name)
            self.broker.do_requeue(self.queue_name, *redis_ids)
            # Tell idle consumers elsewhere at once, as an enqueue would.
            self.broker.client.rpush(self.broker.keys.wake(self.queue_name), *["1"] * min(len(redis_ids), WAKE_TOKENS))
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise ConnectionClosed(error) from None

    def _take_acks(self) -> list[str]:
        acks = []
        while True:
            try:
                acks.append(self._acks.popleft())
            except IndexError:
                return acks

    def _send(self, count: int, acks: list[str]) -> list[tuple[str, bytes]]:
        """Ack *acks* and fetch up to *count*; on failure the acks are kept for the next call."""
        try:
            return self.broker.fetch(self.queue_name, max(count, 0), acks)
        except redis.RedisError:
            self._acks.extendleft(reversed(acks))
            raise

    def _wait(self, may_fetch: bool) -> None:
        """Wait for an ack, or (when *may_fetch*) for work on the queue, or the timeout.

        A delay queue's consumer holds delayed messages in its thread's
        ``delay_queue`` and must come back when the earliest is due.
        """
        timeout_s = self._wait_s
        delayed = getattr(threading.current_thread(), "delay_queue", None)
        if delayed is not None:
            try:
                eta_ms = delayed.queue[0].priority
            except (IndexError, AttributeError):
                pass
            else:
                timeout_s = max(0.0, min(timeout_s, (eta_ms - current_millis()) / 1000))
        if not may_fetch:
            self.wake_event.wait(timeout_s)
        elif timeout_s > 0:
            self.broker.hub.wait(self, timeout_s)

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
