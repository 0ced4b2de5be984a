"""Signed messages: what is pushed into Redis by hand never runs; rotation, retries and replays keep working."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq import Message

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.dead_letters import DeadLetter, list_dead_letters, replay_dead_letter
from nightshift.common.errors import TransientError
from nightshift.common.events.catalog import CATALOG
from nightshift.common.keyring import KeyRing, RingKey
from nightshift.common.outbox import OutboxRelay, publish_in_transaction
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.common.signing import SIGNATURE_OPTION, MessageSigner

pytestmark = pytest.mark.integration

QUEUE = "testsvc_high"
#: Job ids run by the actors below, in order.
RAN: list[str] = []
#: Failures left per job id for ``fails_first``.
FAILURES: dict[str, int] = {}

NEW = RingKey("k2", os.urandom(32))
OLD = RingKey("k1", os.urandom(32))
#: Retired an hour ago.
RETIRED = RingKey("k0", os.urandom(32), retired_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


@dramatiq.actor(queue_name=QUEUE, actor_name="signed_work")
def signed_work(job: str) -> None:
    RAN.append(job)


@dramatiq.actor(queue_name=QUEUE, actor_name="fails_first")
def fails_first(job: str) -> None:
    RAN.append(job)
    if FAILURES.get(job, 0) > 0:
        FAILURES[job] -= 1
        raise TransientError("not yet")


def _ring_text(*keys: RingKey) -> str:
    entries = []
    for key in keys:
        entry = f"{key.key_id}:{base64.b64encode(key.secret).decode()}"
        if key.retired_at is not None:
            entry += "@" + key.retired_at.isoformat()
        entries.append(entry)
    return ",".join(entries)


@pytest.fixture
def rotated(env: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CommonSettings]:
    """Settings whose ring is NEW (current), OLD (still valid) and RETIRED (retired an hour ago)."""
    monkeypatch.setenv("MESSAGE_SIGNING_KEYS", _ring_text(NEW, OLD, RETIRED))
    runtime.reset()
    RAN.clear()
    FAILURES.clear()
    yield runtime.settings()
    runtime.reset()


@pytest.fixture
def signed_broker(
    rotated: CommonSettings, redis_client: redis.Redis[bytes], clean_db: Any
) -> Iterator[NightshiftRedisBroker]:
    previous = dramatiq.get_broker()
    broker = build_broker(rotated)
    for name in previous.get_declared_actors():
        actor = previous.get_actor(name)
        actor.broker = broker
        broker.declare_actor(actor)
    broker.declare_queue(QUEUE)
    alert_queue = CATALOG["ops.alert_raised"].subscribers[0].contract.queue_name
    broker.declare_queue(alert_queue)
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=2)
    worker.start()
    yield broker
    worker.stop(timeout=5000)
    broker.close()


def _message(job: str, actor: str = "signed_work") -> Message[Any]:
    return Message(queue_name=QUEUE, actor_name=actor, args=(), kwargs={"job": job}, options={})


def _push_by_hand(broker: NightshiftRedisBroker, body: bytes) -> None:
    """Write a body straight into the queue, as anyone with write access to Redis could."""
    redis_id = str(uuid.uuid4())
    broker.client.hset(broker.keys.messages(QUEUE), redis_id, body)
    broker.client.rpush(broker.keys.queue(QUEUE), redis_id)
    broker.client.rpush(broker.keys.wake(QUEUE), "1")


def _body(message: Message[Any]) -> bytes:
    return json.dumps(message.asdict()).encode()


def _dead(broker: NightshiftRedisBroker, job_id: str) -> DeadLetter | None:
    return next((letter for letter in list_dead_letters(broker, QUEUE) if letter.job_id == job_id), None)


def _alerts(broker: NightshiftRedisBroker) -> list[dict[str, Any]]:
    contract = CATALOG["ops.alert_raised"].subscribers[0].contract
    bodies = broker.client.hvals(broker.keys.messages(contract.queue_name))
    return [Message.decode(body).asdict() for body in bodies]


def _refused(broker: NightshiftRedisBroker, message: Message[Any]) -> DeadLetter:
    # The reason is written just after the nack (DeadLetterReasons.after_nack): wait for both.
    def with_reason() -> DeadLetter | None:
        letter = _dead(broker, message.message_id)
        return letter if letter is not None and letter.error_type != "Unknown" else None

    letter = wait_for(with_reason, what="the refused message dead-lettered with its reason")
    assert message.kwargs["job"] not in RAN
    return letter


def test_unsigned_wrong_key_altered_and_retired_never_run_and_are_dead_lettered_with_reason_and_alert(
    signed_broker: NightshiftRedisBroker,
) -> None:
    broker = signed_broker
    unsigned = _message("unsigned")

    foreign = _message("foreign")
    MessageSigner(KeyRing([RingKey("k2", os.urandom(32))])).sign(foreign)  # the right id, not the right secret
    unknown = _message("unknown-key")
    MessageSigner(KeyRing([RingKey("intruder", os.urandom(32))])).sign(unknown)

    altered = _message("altered")
    MessageSigner(KeyRing([NEW])).sign(altered)
    altered = Message(**{**altered.asdict(), "kwargs": {"job": "altered-args"}})

    retired = _message("retired")
    MessageSigner(KeyRing([RingKey(RETIRED.key_id, RETIRED.secret)])).sign(retired)

    for message in (unsigned, foreign, unknown, altered, retired):
        _push_by_hand(broker, _body(message))

    reasons = {m.kwargs["job"]: _refused(broker, m) for m in (unsigned, foreign, unknown, altered, retired)}
    assert (reasons["unsigned"].error_type, reasons["unsigned"].reason) == (
        "UnsignedMessage",
        f"message {unsigned.message_id!r} carries no signature",
    )
    assert reasons["foreign"].error_type == "TamperedMessage"
    assert "does not match its signature" in reasons["foreign"].reason
    assert reasons["unknown-key"].error_type == "UnknownSigningKey"
    assert "unknown key 'intruder'" in reasons["unknown-key"].reason
    assert reasons["altered-args"].error_type == "TamperedMessage"
    assert reasons["retired"].error_type == "RetiredSigningKey"
    assert "key 'k0', retired at" in reasons["retired"].reason
    assert RAN == []

    # One alert per kind of refusal on the queue, itself a signed message.
    alerts = wait_for(lambda: a if len(a := _alerts(broker)) == 4 else None, what="four alerts")
    kinds = sorted(alert["kwargs"]["facts"]["refusal"] for alert in alerts)
    assert kinds == ["RetiredSigningKey", "TamperedMessage", "UnknownSigningKey", "UnsignedMessage"]
    assert all(alert["kwargs"]["kind"] == "message_refused" for alert in alerts)
    checker = MessageSigner(broker_ring(broker))
    for alert in alerts:
        checker.verify(Message(**alert))

    # The platform's own message on the same queue still runs.
    sent = signed_work.send("genuine")
    wait_for(lambda: "genuine" in RAN, what="the genuine message run")
    assert sent.options[SIGNATURE_OPTION].startswith("k2.")


def broker_ring(broker: NightshiftRedisBroker) -> KeyRing:
    return runtime.settings().signing_keys()


def test_rotation_keeps_messages_signed_with_the_previous_key_valid_and_renews_them_on_retry(
    signed_broker: NightshiftRedisBroker,
) -> None:
    broker = signed_broker
    in_flight = _message("in-flight")
    MessageSigner(KeyRing([OLD])).sign(in_flight)
    _push_by_hand(broker, _body(in_flight))
    wait_for(lambda: "in-flight" in RAN, what="the message signed with the previous key run")

    # A retry of such a message is signed again with the current key: it outlives the old key.
    FAILURES["retried"] = 1
    retried = _message("retried", actor="fails_first")
    MessageSigner(KeyRing([OLD])).sign(retried)
    renewed = retried.copy(options={"retries": 1})
    MessageSigner(broker_ring(broker)).ensure_signed(renewed)
    assert renewed.options[SIGNATURE_OPTION].startswith("k2.")
    _push_by_hand(broker, _body(retried))
    wait_for(lambda: RAN.count("retried") == 2, what="the first attempt and its retry")
    assert _dead(broker, retried.message_id) is None


def test_retries_keep_messages_valid_and_a_replayed_dead_letter_runs_but_a_forged_one_is_refused_again(
    signed_broker: NightshiftRedisBroker,
) -> None:
    broker = signed_broker
    FAILURES["twice"] = 2
    fails_first.send("twice")
    wait_for(lambda: RAN.count("twice") == 3, what="two retries, then success")

    FAILURES["replayed"] = 99
    dead = fails_first.send_with_options(kwargs={"job": "replayed"}, max_retries=0)
    wait_for(lambda: _dead(broker, dead.message_id), what="the failing message dead")
    FAILURES["replayed"] = 0
    replay_dead_letter(broker, QUEUE, dead.message_id)
    wait_for(lambda: RAN.count("replayed") == 2, what="the replayed message run")

    forged = _message("forged")
    MessageSigner(KeyRing([NEW])).sign(forged)
    forged = Message(**{**forged.asdict(), "kwargs": {"job": "forged-args"}})
    _push_by_hand(broker, _body(forged))
    _refused(broker, forged)
    replay_dead_letter(broker, QUEUE, forged.message_id)
    letter = wait_for(lambda: _dead(broker, forged.message_id), what="the forged message refused again")
    assert letter.error_type == "TamperedMessage"
    assert "forged-args" not in RAN


def test_outbox_relay_and_publish_sign_what_they_enqueue(signed_broker: NightshiftRedisBroker, clean_db: Any) -> None:
    from sqlalchemy.orm import Session

    broker = signed_broker
    with Session(clean_db) as session, session.begin():
        publish_in_transaction(session, "post.created", {"post_id": 7})
    OutboxRelay(clean_db, broker).drain()
    checker = MessageSigner(broker_ring(broker))
    queue = CATALOG["post.created"].subscribers[0].contract.queue_name
    bodies = broker.client.hvals(broker.keys.messages(queue))
    assert bodies
    for body in bodies:
        message = Message.decode(body)
        assert checker.verify(message).key_id == "k2"
