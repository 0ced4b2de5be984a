"""Job records on real PostgreSQL: statuses only move forward, concurrent writers never deadlock."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from nightshift.common.db.engine import make_engine
from nightshift.common.db.models import JobRecord, TaskAudit
from nightshift.common.dead_letters import list_dead_letters, replay_dead_letter
from nightshift.common.errors import NotFound
from nightshift.common.processes import wait_for
from nightshift.common.records import JobEvent, RecordWriter
from nightshift.common.redis_broker import NightshiftRedisBroker

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
QUEUE = "testsvc_high"
#: Job names whose row "exists" for :func:`needs_a_row` (set by the test before a replay).
ROWS: set[str] = set()


@dramatiq.actor(queue_name=QUEUE, actor_name="needs_a_row")
def needs_a_row(job: str) -> None:
    if job not in ROWS:
        raise NotFound(f"row {job} does not exist")


def _at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _event(message_id: str, status: str, seconds: int, **fields: Any) -> JobEvent:
    return JobEvent(message_id, "send_welcome_email", "users_high", status, _at(seconds), **fields)


def _life(message_id: str) -> list[JobEvent]:
    """A job failing once and done on its second attempt, its publisher slower than the worker.

    The publisher stamps "queued" after the message is in Redis (``after_enqueue``),
    so a fast worker can have finished it by then: "queued" is stamped last.
    """
    return [
        _event(message_id, "queued", 5, enqueued_at=_at(5), trigger="event:user.registered", args={"user_id": 1}),
        _event(message_id, "running", 1, attempts=1, args={"user_id": 1}, started_at=_at(1)),
        _event(message_id, "retrying", 2, attempts=1, error="TransientError: 503"),
        _event(message_id, "running", 3, attempts=2, args={"user_id": 1}, started_at=_at(3)),
        _event(message_id, "done", 4, attempts=2, finished_at=_at(4)),
    ]


def _records(engine: Engine, message_ids: list[str]) -> dict[str, JobRecord]:
    with Session(engine) as session:
        ids = [uuid.UUID(m) for m in message_ids]
        return {str(r.message_id): r for r in session.scalars(select(JobRecord).where(JobRecord.message_id.in_(ids)))}


def _state(record: JobRecord) -> tuple[object, ...]:
    return (
        record.status,
        record.attempts,
        tuple(sorted(record.args.items())),
        record.trigger,
        record.enqueued_at,
        record.started_at,
        record.finished_at,
        record.last_error,
        record.updated_at,
    )


@pytest.fixture
def writer(clean_db: Engine) -> Iterator[RecordWriter]:
    """A writer that only writes when flushed (its background interval is an hour)."""
    writer = RecordWriter(clean_db, flush_interval_ms=3_600_000)
    yield writer
    writer.close()


def test_every_order_of_a_jobs_events_ends_in_the_same_record(writer: RecordWriter, clean_db: Engine) -> None:
    # Each message gets the five events in one of the 120 orders, one transaction per event.
    orders = {str(uuid.uuid4()): order for order in itertools.permutations(range(5))}
    lives = {message_id: _life(message_id) for message_id in orders}
    for position in range(5):
        for message_id, order in orders.items():
            writer.job(lives[message_id][order[position]])
        assert writer.flush() == len(orders)
    # The same events, all in one batch: merged in Python before the upsert.
    batched = [str(uuid.uuid4()) for _ in range(10)]
    for message_id, order in zip(batched, itertools.islice(orders.values(), 10), strict=True):
        for index in order:
            writer.job(_life(message_id)[index])
    writer.flush()

    records = _records(clean_db, [*orders, *batched])
    expected = ("done", 2, (("user_id", 1),), "event:user.registered", _at(5), _at(3), _at(4), "TransientError: 503")
    assert {_state(record) for record in records.values()} == {(*expected, _at(5))}
    assert len(records) == len(orders) + len(batched)


@pytest.mark.parametrize(
    ("events", "status", "attempts"),
    [
        # The publisher's "queued", stamped and written after the worker's "done": still done.
        ([("running", 1, 1), ("done", 2, 1), ("queued", 3, 0)], "done", 1),
        ([("queued", 3, 0), ("running", 1, 1), ("done", 2, 1)], "done", 1),
        ([("running", 1, 1), ("queued", 3, 0)], "running", 1),
        # A late "running" of an attempt that has ended, even stamped later (another host's clock).
        ([("done", 2, 1), ("running", 1, 1)], "done", 1),
        ([("done", 2, 1), ("running", 5, 1)], "done", 1),
        # The next attempt's "running" passes the last attempt's "retrying", in either order.
        ([("retrying", 2, 1), ("running", 3, 2)], "running", 2),
        ([("running", 3, 2), ("retrying", 2, 1)], "running", 2),
        ([("retrying", 4, 1), ("running", 3, 2)], "running", 2),
        # Dead and skipped are final against earlier news, even news stamped later.
        ([("dead", 2, 1), ("queued", 9, 0), ("running", 9, 1), ("retrying", 9, 1)], "dead", 1),
        ([("skipped", 1, 1), ("queued", 9, 0), ("running", 9, 1)], "skipped", 1),
        # A message failed after it was skipped is dead-lettered: the nack's "dead" wins.
        ([("skipped", 1, 1), ("dead", 2, 1)], "dead", 1),
        # Its own queued after a retry's running: the retry's attempt counts.
        ([("running", 3, 2), ("queued", 0, 0), ("running", 1, 1)], "running", 2),
    ],
)
def test_a_status_never_moves_backward(
    writer: RecordWriter, clean_db: Engine, events: list[tuple[str, int, int]], status: str, attempts: int
) -> None:
    message_id = str(uuid.uuid4())
    for name, seconds, attempt in events:
        finished = _at(seconds) if name in {"done", "dead", "skipped"} else None
        started = _at(seconds) if name == "running" else None
        enqueued = _at(seconds) if name == "queued" else None
        writer.job(
            _event(
                message_id,
                name,
                seconds,
                attempts=attempt,
                enqueued_at=enqueued,
                started_at=started,
                finished_at=finished,
            )
        )
        writer.flush()
    record = _records(clean_db, [message_id])[message_id]
    assert (record.status, record.attempts) == (status, attempts)
    finishes = [_at(s) for name, s, _ in events if name in {"done", "dead", "skipped"}]
    assert record.finished_at == (max(finishes) if finishes else None)
    assert record.updated_at == max(_at(s) for _, s, _ in events)


def test_two_writers_with_overlapping_batches_in_opposite_orders_never_deadlock(
    database_url: str, clean_db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A publisher's and a worker's writer, each on its own connection pool, write the same rows."""
    message_ids = sorted(str(uuid.uuid4()) for _ in range(300))
    rounds = 25
    engines = [make_engine(database_url), make_engine(database_url)]
    writers = [RecordWriter(engine, flush_interval_ms=3_600_000) for engine in engines]
    failures: list[DBAPIError] = []
    start = threading.Barrier(2, timeout=60)

    def write(index: int) -> None:
        writer = writers[index]
        ids = message_ids if index == 0 else message_ids[::-1]
        for round_ in range(1, rounds + 1):
            for message_id in ids:
                if index == 0:
                    writer.job(_event(message_id, "running", round_, attempts=round_, started_at=_at(round_)))
                else:
                    writer.job(_event(message_id, "retrying", round_, attempts=round_, error=f"round {round_}"))
            start.wait()
            try:
                writer.flush()
            except DBAPIError as error:  # a deadlock: PostgreSQL rolled this batch back
                failures.append(error)
                writer.flush()

    caplog.set_level(logging.WARNING)
    threads = [threading.Thread(target=write, args=(i,)) for i in (0, 1)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for writer, engine in zip(writers, engines, strict=True):
            writer.close()
            engine.dispose()

    assert not any(thread.is_alive() for thread in threads)
    assert [str(f.orig) for f in failures] == []
    assert "deadlock" not in caplog.text.lower()
    records = _records(clean_db, message_ids)
    assert len(records) == len(message_ids)
    final = ("retrying", rounds, _at(rounds), f"round {rounds}")
    assert {(r.status, r.attempts, r.started_at, r.last_error) for r in records.values()} == {final}


def _record(broker: NightshiftRedisBroker, engine: Engine, message_id: str, status: str) -> JobRecord | None:
    broker.record_writer.flush()
    record = _records(engine, [message_id]).get(message_id)
    return record if record is not None and record.status == status else None


def test_a_replayed_dead_letter_moves_its_record_on(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    run_worker({QUEUE})
    message = needs_a_row.send("replay-me")
    dead = wait_for(lambda: _record(broker, clean_db, message.message_id, "dead"), what="message dead")
    assert dead.attempts == 1

    ROWS.add("replay-me")
    [letter] = list_dead_letters(broker, QUEUE)
    assert replay_dead_letter(broker, QUEUE, str(letter.job_id))
    done = wait_for(lambda: _record(broker, clean_db, message.message_id, "done"), what="replayed message done")
    assert (done.attempts, done.last_error) == (2, "NotFound: row replay-me does not exist")
    with Session(clean_db) as session:
        audit = session.execute(
            select(TaskAudit.attempt, TaskAudit.outcome)
            .where(TaskAudit.message_id == uuid.UUID(message.message_id))
            .order_by(TaskAudit.id)
        ).all()
    assert [tuple(row) for row in audit] == [(1, "dead"), (2, "done")]
