"""``publish_many``: the whole batch is validated first, then enqueued pipelined, records and all."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from dramatiq import Message
from sqlalchemy import Engine, text

from nightshift.common.errors import InvalidEvent, UnknownEvent
from nightshift.common.events import publish_many
from nightshift.common.redis_broker import ENQUEUE_BATCH, NightshiftRedisBroker
from nightshift.common.redis_keys import RedisKeys

pytestmark = pytest.mark.integration

#: The broker's key names (the default namespace, as every Nightshift broker uses).
KEYS = RedisKeys()

#: ``user.registered`` has one subscriber, on this queue.
QUEUE = "users_high"


def _queued(client: redis.Redis[bytes]) -> list[Message[object]]:
    ids = client.lrange(KEYS.queue(QUEUE), 0, -1)
    bodies = client.hmget(KEYS.messages(QUEUE), ids) if ids else []
    return [Message.decode(body) for body in bodies if body]


def _calls(client: redis.Redis[bytes], command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_every_event_is_enqueued_in_order_with_its_job_record(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    sent = publish_many("user.registered", [{"user_id": n} for n in range(1, 6)], broker=broker)

    assert [m.kwargs["user_id"] for m in sent] == [1, 2, 3, 4, 5]
    queued = _queued(redis_client)
    assert [m.kwargs["user_id"] for m in queued] == [1, 2, 3, 4, 5]
    assert [m.message_id for m in queued] == [m.message_id for m in sent]
    assert all(m.options["trigger"] == "event:user.registered" for m in queued)
    # Idle consumers are woken as by single enqueues: one token per message (at most 32 kept).
    assert redis_client.llen(KEYS.wake(QUEUE)) == 5
    # Each went through the middleware: a "queued" job record per message.
    broker.record_writer.flush()
    with clean_db.connect() as connection:
        rows = connection.execute(text("SELECT message_id::text, status FROM job_records")).all()
    assert sorted(rows) == sorted((m.message_id, "queued") for m in sent)


def test_a_batch_goes_to_redis_in_one_round_trip(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    publish_many("user.registered", [{"user_id": 1}], broker=broker)  # the script is loaded
    evalsha_before = _calls(redis_client, "evalsha")
    clients_before = int(redis_client.info("stats")["total_commands_processed"])

    publish_many("user.registered", [{"user_id": n} for n in range(1, 301)], broker=broker)

    # One script call for the batch (one queue), running its five commands, and this
    # test's three reads (INFO, LLEN, INFO): nothing else (no SCRIPT EXISTS, nothing per message).
    assert _calls(redis_client, "evalsha") - evalsha_before == 1
    assert redis_client.llen(KEYS.queue(QUEUE)) == 301
    processed = int(redis_client.info("stats")["total_commands_processed"]) - clients_before
    assert processed == 1 + 5 + 3


def test_one_batch_for_several_queues_reaches_each_queue_in_order(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    queues = ["manytest_high", "manytest_low"]
    messages: list[Message[Any]] = [
        Message(queue_name=queues[n % 2], actor_name="many_test", args=(n,), kwargs={}, options={}) for n in range(6)
    ]

    sent = broker.enqueue_many(messages)

    for queue in queues:
        ids = redis_client.lrange(KEYS.queue(queue), 0, -1)
        bodies = redis_client.hmget(KEYS.messages(queue), ids)
        assert [Message.decode(body).args[0] for body in bodies if body] == [
            m.args[0] for m in sent if m.queue_name == queue
        ]
        assert redis_client.llen(KEYS.wake(queue)) == 3
    assert [m.message_id for m in sent] == [m.message_id for m in messages]


def test_more_than_a_batch_is_split_and_all_arrive(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    count = ENQUEUE_BATCH + 7
    sent = publish_many("user.registered", [{"user_id": n} for n in range(1, count + 1)], broker=broker)

    assert len(sent) == count
    assert redis_client.llen(KEYS.queue(QUEUE)) == count
    assert [m.kwargs["user_id"] for m in _queued(redis_client)] == list(range(1, count + 1))


def test_one_invalid_payload_means_nothing_is_enqueued_and_the_error_names_it(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    payloads = [{"user_id": 1}, {"user_id": 2}, {"user_id": -4}, {"user_id": 5}]

    with pytest.raises(InvalidEvent, match=r"user\.registered v1 payload 2: user_id: Input should be greater than 0"):
        publish_many("user.registered", payloads, broker=broker)

    assert redis_client.llen(KEYS.queue(QUEUE)) == 0
    assert redis_client.hlen(KEYS.messages(QUEUE)) == 0


def test_a_payload_that_is_not_an_object_is_named_by_its_index(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    with pytest.raises(InvalidEvent, match=r"user\.registered payload 1: payload must be a JSON object, got list"):
        publish_many("user.registered", [{"user_id": 1}, [1]], broker=broker)  # type: ignore[list-item]

    assert redis_client.llen(KEYS.queue(QUEUE)) == 0


def test_an_unknown_event_is_refused_before_anything_is_sent(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    with pytest.raises(UnknownEvent, match=r"user\.deleted"):
        publish_many("user.deleted", [{"user_id": 1}], broker=broker)

    assert redis_client.dbsize() == 0


def test_the_script_is_loaded_again_when_redis_lost_it(
    broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    publish_many("user.registered", [{"user_id": 1}], broker=broker)
    redis_client.script_flush()

    publish_many("user.registered", [{"user_id": 2}, {"user_id": 3}], broker=broker)

    assert [m.kwargs["user_id"] for m in _queued(redis_client)] == [1, 2, 3]
