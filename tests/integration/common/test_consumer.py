"""The consumer keeps Dramatiq's contract: a fetched message is handed out or requeued, never stranded.

``None`` from a consumer means "no message was available", and Dramatiq's
consumer thread may stop right there; so a fetch is followed by a message at
once, and a stop puts everything fetched but not run back on the queue at
once (not seconds later through the recovery of dead workers' messages). An
idle wait survives a ``socket_timeout`` shorter than itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.errors import ConnectionClosed

from nightshift.common.broker import build_broker
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

QUEUE = "consumertest_normal"


def _enqueue(broker: NightshiftRedisBroker, count: int) -> list[Message[Any]]:
    broker.declare_queue(QUEUE)
    return [
        broker.enqueue(Message(queue_name=QUEUE, actor_name="consumer_hold", args=(n,), kwargs={}, options={}))
        for n in range(count)
    ]


def _ready(client: redis.Redis[bytes], broker: NightshiftRedisBroker) -> set[str]:
    """The Redis message ids ready on the queue."""
    return {member.decode() for member in client.lrange(broker.keys.queue(QUEUE), 0, -1)}


def _held(client: redis.Redis[bytes], broker: NightshiftRedisBroker) -> set[str]:
    """The Redis message ids in this worker's ack set (fetched, not acked)."""
    return {member.decode() for member in client.smembers(broker.keys.acks(broker.broker_id, QUEUE))}


def test_next_returns_the_first_fetched_message_at_once(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    sent = _enqueue(broker, 5)
    consumer = broker.consume(QUEUE, prefetch=5, timeout=1000)

    first = next(consumer)

    assert first is not None
    assert first.message_id == sent[0].message_id
    # The fetch took all five: none is left ready, all five are in this worker's ack set.
    assert redis_client.llen(broker.keys.queue(QUEUE)) == 0
    assert _held(redis_client, broker) == {message.options["redis_message_id"] for message in sent}


def test_closing_the_consumer_requeues_what_it_fetched_but_did_not_hand_out(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    sent = _enqueue(broker, 5)
    consumer = broker.consume(QUEUE, prefetch=5, timeout=1000)
    first = next(consumer)
    assert first is not None

    consumer.close()

    redis_ids = [message.options["redis_message_id"] for message in sent]
    assert _ready(redis_client, broker) == set(redis_ids[1:])
    assert _held(redis_client, broker) == {redis_ids[0]}
    # What was handed out is the worker's to requeue (Dramatiq does it on stop).
    consumer.requeue([first])
    assert _ready(redis_client, broker) == set(redis_ids)
    assert _held(redis_client, broker) == set()
    assert redis_client.hlen(broker.keys.messages(QUEUE)) == 5


def test_a_stopped_worker_leaves_every_fetched_message_on_the_queue(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    @dramatiq.actor(queue_name=QUEUE, actor_name="consumer_hold", broker=broker)
    def hold(n: int) -> None:
        ran.append(n)
        started.set()
        release.wait(10)

    sent = _enqueue(broker, 6)
    # One thread, prefetch 2: one message runs, the next is fetched and waits.
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=1)
    worker.start()
    try:
        assert started.wait(10), "the first message never started"
        stopping = threading.Thread(target=worker.stop, kwargs={"timeout": 10_000})
        stopping.start()
        # Let the running message finish only once the worker threads are told to stop.
        wait_for(lambda: not any(thread.running for thread in worker.workers), what="worker threads stopping")
        release.set()
        stopping.join(15)
        assert not stopping.is_alive(), "the worker did not stop"
    finally:
        release.set()

    assert ran == [0]
    # At once, with no recovery involved: the five others are ready again and nothing is held.
    redis_ids = {message.options["redis_message_id"] for message in sent[1:]}
    assert _ready(redis_client, broker) == redis_ids
    assert _held(redis_client, broker) == set()
    assert redis_client.hlen(broker.keys.messages(QUEUE)) == 5


@pytest.fixture
def short_timeout_broker(env: CommonSettings, redis_client: redis.Redis[bytes]) -> Iterator[NightshiftRedisBroker]:
    """A broker whose ``REDIS_URL`` sets a 0.2 s socket timeout, shorter than an idle wait (1 s)."""
    settings = env.model_copy(update={"redis_url": f"{env.redis_url}?socket_timeout=0.2"})
    broker = build_broker(settings, set_global=False)
    assert broker.client.connection_pool.connection_kwargs["socket_timeout"] == 0.2
    yield broker
    broker.close()


def test_an_idle_wait_outlasting_the_socket_timeout_is_no_work(
    short_timeout_broker: NightshiftRedisBroker,
) -> None:
    broker = short_timeout_broker
    broker.declare_queue(QUEUE)
    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)

    assert next(consumer) is None
    assert next(consumer) is None

    [sent] = _enqueue(broker, 1)
    received: MessageProxy | None = next(consumer)
    assert received is not None and received.message_id == sent.message_id


def _blpop_calls(client: redis.Redis[bytes]) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_blpop", {}).get("calls", 0))


def test_an_idle_worker_with_a_short_socket_timeout_keeps_its_consumer(
    short_timeout_broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    broker = short_timeout_broker
    done = threading.Event()

    @dramatiq.actor(queue_name=QUEUE, actor_name="consumer_done", broker=broker)
    def mark_done() -> None:
        done.set()

    broker.declare_queue(QUEUE)
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=1)
    caplog.set_level(logging.INFO, logger="dramatiq")
    worker.start()
    try:
        consumer_thread = worker.consumers[QUEUE]
        wait_for(lambda: consumer_thread.consumer is not None, what="the consumer")
        first_consumer = consumer_thread.consumer
        # Several idle waits, each longer than the socket timeout were it not bounded.
        calls = _blpop_calls(redis_client)
        wait_for(lambda: _blpop_calls(redis_client) >= calls + 5, what="five idle waits")

        mark_done.send()
        assert done.wait(10), "the message sent after the idle waits was not processed"
        assert consumer_thread.consumer is first_consumer
    finally:
        worker.stop(timeout=5000)
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []


def test_a_connection_stalled_past_the_socket_timeout_is_a_connection_error_even_while_closing(
    env: CommonSettings, broker: NightshiftRedisBroker
) -> None:
    # redis.TimeoutError is not a redis.ConnectionError. Dramatiq restarts a consumer after
    # ConnectionClosed; any other error (the bare TimeoutError) raised while it closes the
    # consumer ends the consumer thread for good: a worker that never consumes again.
    address = urlsplit(env.redis_url)
    proxy = TcpProxy((address.hostname or "127.0.0.1", address.port or 6379)).start()
    stalled = build_broker(
        env.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0?socket_timeout=0.3"}),
        set_global=False,
    )
    try:
        _enqueue(broker, 3)
        holding = stalled.consume(QUEUE, prefetch=3, timeout=1000)
        assert next(holding) is not None  # two more fetched and cached: close must requeue them
        fetching = stalled.consume(QUEUE, prefetch=1, timeout=1000)
        proxy.blackhole()
        with pytest.raises(ConnectionClosed):
            next(fetching)
        with pytest.raises(ConnectionClosed):
            holding.close()
    finally:
        proxy.heal()
        stalled.close()
        proxy.close()
