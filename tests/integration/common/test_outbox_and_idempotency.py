"""The outbox sends committed events once in order, never rolled-back ones; keys guard effects."""

from __future__ import annotations

import dataclasses

import pytest
import redis
from dramatiq import Message
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from nightshift.common.db.models import OutboxEvent, ProcessedKey
from nightshift.common.errors import InvalidEvent
from nightshift.common.events.catalog import CATALOG
from nightshift.common.idempotency import claim
from nightshift.common.outbox import OutboxRelay, publish_in_transaction
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.redis_keys import RedisKeys

pytestmark = pytest.mark.integration

#: The broker's key names (the default namespace, as every Nightshift broker uses).
KEYS = RedisKeys()


def _queued(client: redis.Redis[bytes], queue: str) -> list[Message[object]]:
    ids = client.lrange(KEYS.queue(queue), 0, -1)
    bodies = client.hmget(KEYS.messages(queue), ids) if ids else []
    return [Message.decode(body) for body in bodies if body]


def test_rolled_back_events_are_never_sent(
    broker: NightshiftRedisBroker, clean_db: Engine, redis_client: redis.Redis[bytes]
) -> None:
    with Session(clean_db) as session, session.begin():
        publish_in_transaction(session, "user.registered", {"user_id": 1})
        session.rollback()

    assert OutboxRelay(clean_db, broker).drain() == 0
    assert redis_client.llen(KEYS.queue("users_high")) == 0


def test_committed_events_are_relayed_once_in_order(
    broker: NightshiftRedisBroker, clean_db: Engine, redis_client: redis.Redis[bytes]
) -> None:
    with Session(clean_db) as session, session.begin():
        for user_id in (3, 1, 2):
            publish_in_transaction(session, "user.registered", {"user_id": user_id}, aggregate_id="demo")
    relay = OutboxRelay(clean_db, broker, batch_size=2)

    assert relay.drain() == 3
    assert relay.drain() == 0
    assert [m.kwargs["user_id"] for m in _queued(redis_client, "users_high")] == [3, 1, 2]
    with Session(clean_db) as session:
        assert session.scalar(select(func.count()).where(OutboxEvent.sent_at.is_(None))) == 0


def test_a_resend_after_a_crash_reuses_the_message_ids(
    broker: NightshiftRedisBroker, clean_db: Engine, redis_client: redis.Redis[bytes]
) -> None:
    with Session(clean_db) as session, session.begin():
        publish_in_transaction(session, "user.registered", {"user_id": 9})
    relay = OutboxRelay(clean_db, broker)
    relay.drain()
    # As if the relay had crashed after enqueueing but before marking the row sent.
    with Session(clean_db) as session, session.begin():
        session.execute(update(OutboxEvent).values(sent_at=None))
    relay.drain()

    first, second = _queued(redis_client, "users_high")
    assert first.message_id == second.message_id


def test_an_event_unknown_to_the_relay_is_left_unsent_for_one_that_knows_it(
    broker: NightshiftRedisBroker, clean_db: Engine, redis_client: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A publisher of a newer version (its catalog has an event this relay's lacks), mid rolling deploy.
    newer = dataclasses.replace(CATALOG["user.registered"], name="user.registered_again")
    monkeypatch.setitem(CATALOG, newer.name, newer)
    with Session(clean_db) as session, session.begin():
        publish_in_transaction(session, "user.registered", {"user_id": 1})
        publish_in_transaction(session, newer.name, {"user_id": 2})
        publish_in_transaction(session, "user.registered", {"user_id": 3})
    monkeypatch.delitem(CATALOG, newer.name)
    relay = OutboxRelay(clean_db, broker)

    assert relay.drain() == 1  # the row before it; order holds, nothing marked sent unsent
    assert relay.pending()
    monkeypatch.setitem(CATALOG, newer.name, newer)  # a relay of the newer version
    assert relay.drain() == 2
    assert [m.kwargs["user_id"] for m in _queued(redis_client, "users_high")] == [1, 2, 3]


def test_invalid_events_are_refused_before_anything_is_written(broker: NightshiftRedisBroker, clean_db: Engine) -> None:
    with Session(clean_db) as session, session.begin(), pytest.raises(InvalidEvent, match="user_id"):
        publish_in_transaction(session, "user.registered", {"user_id": "x"})
    with Session(clean_db) as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_a_key_is_claimed_once_and_only_with_its_transaction(clean_db: Engine) -> None:
    with Session(clean_db) as session, session.begin():
        assert claim(session, "k1")
        assert not claim(session, "k1")
    with Session(clean_db) as session, session.begin():
        assert claim(session, "k2")
        session.rollback()
    with Session(clean_db) as session, session.begin():
        assert not claim(session, "k1")
        assert claim(session, "k2")
        assert session.scalar(select(func.count()).select_from(ProcessedKey)) == 2
