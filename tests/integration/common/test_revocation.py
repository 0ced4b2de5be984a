"""A revoked job never runs; a terminated one stops; an unknown id is an error."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightshift.common.db.models import JobRecord
from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.errors import UnknownJob
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.revocation import check_abort, get_revocation, revoke

pytestmark = pytest.mark.integration

QUEUE = "revoke_high"


@dramatiq.actor(queue_name=QUEUE, actor_name="revocable_touch", max_retries=0)
def revocable_touch(path: str) -> None:
    Path(path).write_text("ran")


@dramatiq.actor(queue_name=QUEUE, actor_name="revocable_long", max_retries=3)
def revocable_long(folder: str) -> None:
    """Thirty seconds in small sleeps, leaving a file per start and one at the end."""
    with Path(folder, "starts").open("a") as starts:
        starts.write("started\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.05)
    Path(folder, "finished").write_text("finished")


@dramatiq.actor(queue_name=QUEUE, actor_name="revocable_cooperative", max_retries=3)
def revocable_cooperative(folder: str) -> None:
    """A long loop with a safe point per step."""
    Path(folder, "starts").write_text("started")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        check_abort()
        time.sleep(0.05)
    Path(folder, "finished").write_text("finished")


def _record(broker: NightshiftRedisBroker, engine: Engine, message_id: str) -> JobRecord | None:
    broker.record_writer.flush()
    with Session(engine) as session:
        return session.get(JobRecord, uuid.UUID(message_id))


def _revoked(broker: NightshiftRedisBroker, engine: Engine, message_id: str) -> JobRecord | None:
    record = _record(broker, engine, message_id)
    return record if record is not None and record.status == "revoked" else None


def test_a_job_revoked_before_it_starts_never_runs(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine, tmp_path: Path
) -> None:
    revoked = revocable_touch.send(str(tmp_path / "revoked"))
    kept = revocable_touch.send(str(tmp_path / "kept"))

    revocation = revoke(broker, revoked.message_id, engine=clean_db)
    assert revocation.job_id == revoked.message_id and not revocation.terminate
    run_worker({QUEUE})

    wait_for(lambda: (tmp_path / "kept").exists(), what="the job that was not revoked ran")
    record = wait_for(lambda: _revoked(broker, clean_db, revoked.message_id), what="record revoked")
    assert not (tmp_path / "revoked").exists()
    assert record.last_error == "revoked by operator"
    assert record.finished_at is not None
    assert list_dead_letters(broker, QUEUE) == []
    assert _record(broker, clean_db, kept.message_id).status == "done"  # type: ignore[union-attr]


def test_a_job_recorded_only_in_postgres_can_be_revoked(broker: NightshiftRedisBroker, clean_db: Engine) -> None:
    message = revocable_touch.send("/nonexistent/never")
    broker.record_writer.flush()
    broker.flush(QUEUE)  # no longer in Redis: only its record knows it

    assert revoke(broker, message.message_id, engine=clean_db).job_id == message.message_id
    assert get_revocation(broker, message.message_id) is not None


def test_revoke_terminate_stops_a_running_job(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine, tmp_path: Path
) -> None:
    run_worker({QUEUE}, threads=1)
    message = revocable_long.send(str(tmp_path))
    wait_for(lambda: (tmp_path / "starts").exists(), what="the long job started")

    revocation = revoke(broker, message.message_id, terminate=True, engine=clean_db)

    assert revocation.terminate
    record = wait_for(lambda: _revoked(broker, clean_db, message.message_id), timeout=10, what="record revoked")
    assert record.last_error == "terminated by operator"
    # The only worker thread is free again, and the terminated job was neither retried nor dead-lettered.
    after = revocable_touch.send(str(tmp_path / "after"))
    wait_for(lambda: (tmp_path / "after").exists(), what="the next job ran on the freed thread")
    assert _record(broker, clean_db, after.message_id) is not None
    assert not (tmp_path / "finished").exists()
    assert (tmp_path / "starts").read_text() == "started\n"
    assert list_dead_letters(broker, QUEUE) == []
    assert broker.client.hlen(broker.keys.messages(QUEUE)) == 0


def test_an_actor_stops_at_its_safe_point_after_a_plain_revoke(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine, tmp_path: Path
) -> None:
    run_worker({QUEUE})
    message = revocable_cooperative.send(str(tmp_path))
    wait_for(lambda: (tmp_path / "starts").exists(), what="the cooperative job started")

    revoke(broker, message.message_id, engine=clean_db)

    record = wait_for(lambda: _revoked(broker, clean_db, message.message_id), timeout=10, what="record revoked")
    assert record.last_error == "terminated by operator"
    assert record.attempts == 1
    assert not (tmp_path / "finished").exists()


def test_revoking_an_unknown_id_is_an_error(broker: NightshiftRedisBroker, clean_db: Engine) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(UnknownJob, match=unknown):
        revoke(broker, unknown, engine=clean_db)
    with pytest.raises(UnknownJob, match="not-a-job"):
        revoke(broker, "not-a-job", engine=clean_db)
    assert get_revocation(broker, unknown) is None
