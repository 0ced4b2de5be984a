"""Retries follow the schedule, permanent errors and poison messages go straight to the dead letters."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq import Message
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common.db.models import JobRecord, TaskAudit
from nightshift.common.dead_letters import list_dead_letters, replay_dead_letter
from nightshift.common.errors import NotFound, TransientError
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from tests.conftest import TEST_RETRY_DELAYS_MS

pytestmark = pytest.mark.integration

QUEUE = "testsvc_high"
#: Attempt times per job id, written by the actors below.
ATTEMPTS: dict[str, list[float]] = {}


@dramatiq.actor(queue_name=QUEUE, actor_name="flaky_dependency")
def flaky_dependency(job: str) -> None:
    ATTEMPTS.setdefault(job, []).append(time.monotonic())
    raise TransientError("mail provider answered 503")


@dramatiq.actor(queue_name=QUEUE, actor_name="missing_row")
def missing_row(job: str) -> None:
    ATTEMPTS.setdefault(job, []).append(time.monotonic())
    raise NotFound("user 42 does not exist")


@dramatiq.actor(queue_name=QUEUE, actor_name="well_behaved")
def well_behaved(job: str) -> None:
    ATTEMPTS.setdefault(job, []).append(time.monotonic())


def _record(engine: Engine, message_id: str) -> JobRecord | None:
    with Session(engine) as session:
        return session.get(JobRecord, uuid.UUID(message_id))


def _dead_record(broker: NightshiftRedisBroker, engine: Engine, message_id: str) -> JobRecord | None:
    broker.record_writer.flush()
    record = _record(engine, message_id)
    return record if record is not None and record.status == "dead" else None


def test_transient_failures_follow_the_schedule_then_dead_letter_with_reason(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    run_worker({QUEUE})
    message = flaky_dependency.send("flaky")

    record = wait_for(lambda: _dead_record(broker, clean_db, message.message_id), what="message dead")
    times = ATTEMPTS["flaky"]
    assert len(times) == 1 + len(TEST_RETRY_DELAYS_MS)
    gaps_ms = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    for gap, delay in zip(gaps_ms, TEST_RETRY_DELAYS_MS, strict=True):
        assert gap >= delay * 0.95, (gaps_ms, TEST_RETRY_DELAYS_MS)
    assert record.attempts == 4
    assert record.last_error == "TransientError: mail provider answered 503"
    [letter] = list_dead_letters(broker, QUEUE)
    assert (letter.error_type, letter.reason) == ("TransientError", "mail provider answered 503")
    assert letter.message is not None and letter.message.message_id == message.message_id
    with Session(clean_db) as session:
        outcomes = session.scalars(
            select(TaskAudit.outcome)
            .where(TaskAudit.message_id == uuid.UUID(message.message_id))
            .order_by(TaskAudit.id)
        ).all()
    assert outcomes == ["retrying", "retrying", "retrying", "dead"]


def test_permanent_error_dead_letters_after_one_attempt(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    run_worker({QUEUE})
    message = missing_row.send("missing")

    record = wait_for(lambda: _dead_record(broker, clean_db, message.message_id), what="message dead")
    assert len(ATTEMPTS["missing"]) == 1
    assert record.attempts == 1
    [letter] = list_dead_letters(broker, QUEUE)
    assert (letter.error_type, letter.reason) == ("NotFound", "user 42 does not exist")


def test_poison_messages_are_dead_lettered_and_the_worker_keeps_going(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine, redis_client: redis.Redis[bytes]
) -> None:
    run_worker({QUEUE})
    unknown: Message[None] = Message(
        queue_name=QUEUE, actor_name="no_such_actor", args=(), kwargs={"job": "x"}, options={}
    )
    broker.enqueue(unknown)
    # A body that is not a Dramatiq message at all, written the way the broker would store one.
    redis_client.hset(broker.keys.messages(QUEUE), "garbage-1", b"\xff\xfenot json")
    redis_client.rpush(broker.keys.queue(QUEUE), "garbage-1")
    after = well_behaved.send("after-poison")

    wait_for(lambda: "after-poison" in ATTEMPTS, what="the next message processed")
    letters = wait_for(lambda: len(list_dead_letters(broker, QUEUE)) == 2 and list_dead_letters(broker, QUEUE))
    reasons = {letter.error_type: letter.reason for letter in letters}
    assert reasons["ActorNotFound"] == "no_such_actor"
    assert reasons["UndecodableMessage"].startswith("body of 10 bytes is not a Dramatiq message")
    broker.record_writer.flush()
    assert _record(clean_db, after.message_id).status == "done"  # type: ignore[union-attr]
    assert _record(clean_db, unknown.message_id).status == "dead"  # type: ignore[union-attr]


def test_replayed_dead_letter_runs_again(broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine) -> None:
    run_worker({QUEUE})
    message = missing_row.send("replayed")
    wait_for(lambda: _dead_record(broker, clean_db, message.message_id), what="message dead")
    [letter] = list_dead_letters(broker, QUEUE)

    assert replay_dead_letter(broker, QUEUE, str(letter.job_id))
    wait_for(lambda: len(ATTEMPTS["replayed"]) == 2, what="second attempt after replay")
    wait_for(lambda: len(list_dead_letters(broker, QUEUE)) == 1, what="dead again")
