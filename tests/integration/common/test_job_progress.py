"""Jobs that report: throttled progress, a result, status for the caller, events over HTTP, time limits."""

from __future__ import annotations

import time
import uuid
from typing import Any

import dramatiq
import httpx
import pytest
import redis
from sqlalchemy import Engine, text

from nightshift.common import jobs
from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.errors import JobForbidden, UnknownJob
from nightshift.common.jobs import store
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.support.jobs_app import jobs_app, serve_jobs_app
from tests.support.sse import Event, read_events

pytestmark = pytest.mark.integration

QUEUE = "reporting_high"


@dramatiq.actor(queue_name=QUEUE, actor_name="reporting_steps", max_retries=0)
def reporting_steps(steps: int, pause_s: float) -> None:
    for done in range(1, steps + 1):
        jobs.check_abort()
        time.sleep(pause_s)
        jobs.report_progress(done, total=steps, note=f"step {done}")
    jobs.set_result({"steps": steps, "key": "reports/steps.txt"})


@dramatiq.actor(queue_name=QUEUE, actor_name="reporting_too_long", time_limit=300)
def reporting_too_long() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.01)


def _finished(broker: NightshiftRedisBroker, engine: Engine, client: redis.Redis[bytes], job_id: str) -> Any:
    broker.record_writer.flush()
    status = jobs.job_status(job_id, engine=engine, redis=client)
    return status if status.finished else None


def test_progress_is_throttled_ordered_and_kept_with_the_result(
    env: CommonSettings, broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    client = redis.Redis.from_url(env.redis_url)
    run_worker({QUEUE})
    message = reporting_steps.send(40, 0.05)

    status = wait_for(lambda: _finished(broker, clean_db, client, message.message_id), timeout=30, what="done")

    assert status.status == "done"
    assert status.progress is not None and (status.progress.done, status.progress.total) == (40, 40)
    assert status.result == {"steps": 40, "key": "reports/steps.txt"}
    events = client.xrange(store.events_key(message.message_id))
    dones = [int(fields[b"done"]) for _, fields in events]
    assert 2 <= len(dones) < 40, "reports are throttled, the last one always written"
    assert dones == sorted(dones) and dones[-1] == 40
    with clean_db.connect() as connection:
        kept = connection.execute(
            text("SELECT done, total, result FROM job_progress WHERE message_id = CAST(:id AS uuid)"),
            {"id": message.message_id},
        ).one()
    assert (kept.done, kept.total, kept.result["steps"]) == (40, 40, 40)

    client.delete(store.state_key(message.message_id), store.events_key(message.message_id))
    from_database = jobs.job_status(message.message_id, engine=clean_db, redis=client)
    assert from_database.progress is not None and from_database.progress.done == 40
    assert from_database.result == status.result


def test_unknown_and_foreign_jobs_are_refused(
    env: CommonSettings, broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    client = redis.Redis.from_url(env.redis_url)
    with pytest.raises(UnknownJob):
        jobs.job_status(str(uuid.uuid4()), engine=clean_db, redis=client)
    with pytest.raises(UnknownJob):
        jobs.job_status("not-a-job-id", engine=clean_db, redis=client)
    message = reporting_steps.send(1, 0.0)
    queued = jobs.job_status(message.message_id, engine=clean_db, redis=client, broker=broker)
    assert (queued.status, queued.tenant) == ("queued", "reporting")
    with pytest.raises(JobForbidden):
        jobs.authorize(queued, {"posts"})
    assert jobs.authorize(queued, {"reporting"}) is queued


def test_a_job_over_its_time_limit_is_stopped_and_recorded_as_such(
    env: CommonSettings, broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    client = redis.Redis.from_url(env.redis_url)
    run_worker({QUEUE})
    message = reporting_too_long.send()

    status = wait_for(lambda: _finished(broker, clean_db, client, message.message_id), timeout=30, what="stopped")

    assert status.status == "dead"
    assert status.attempts == 1, "a job past its time limit is not retried"
    assert status.error == "TimedOut: stopped after its time limit of 0.3 s"
    assert [letter.reason for letter in list_dead_letters(broker, QUEUE)] == ["stopped after its time limit of 0.3 s"]


def _events(
    base: str, job_id: str, token: str, *, last_event_id: str | None = None, limit: int | None = None
) -> tuple[int, list[Event]]:
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    received: list[Event] = []
    with httpx.stream("GET", f"{base}/api/jobs/{job_id}/events", headers=headers, timeout=30) as response:
        if response.status_code != 200:
            return response.status_code, received
        for event in read_events(response):
            received.append(event)
            if limit is not None and len(received) >= limit:
                break  # the client drops the connection
    return 200, received


def test_the_event_stream_survives_reconnects_and_ends_with_the_result(
    env: CommonSettings, broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    client = redis.Redis.from_url(env.redis_url)
    tokens = {"all": None, "reporting": {"reporting"}, "posts-only": {"posts"}}
    with serve_jobs_app(jobs_app(clean_db, client, tokens)) as base:
        message = reporting_steps.send(30, 0.1)
        broker.record_writer.flush()
        run_worker({QUEUE})

        code, first = _events(base, message.message_id, "reporting", limit=3)
        assert code == 200
        assert first[0].event == "status" and first[0].id is None  # the snapshot
        progress = [e for e in first if e.event == "progress"]
        assert progress and all(e.id for e in progress)

        seen = list(progress)
        final: Event | None = None
        reconnects = 0
        while final is None:
            reconnects += 1
            code, more = _events(base, message.message_id, "reporting", last_event_id=seen[-1].id, limit=4)
            assert code == 200
            assert all(e.event != "status" or e.id == jobs.FINAL_EVENT_ID for e in more), "no snapshot on resume"
            seen.extend(e for e in more if e.event == "progress")
            final = next((e for e in more if e.event == "status"), None)

        assert reconnects >= 2
        ids = [e.id for e in seen]
        assert len(ids) == len(set(ids)), "no event is sent twice across reconnects"
        dones = [e.data["done"] for e in seen]
        assert dones == sorted(dones) and dones[-1] == 30
        assert final.id == jobs.FINAL_EVENT_ID
        assert final.data["status"] == "done"
        assert final.data["result"] == {"steps": 30, "key": "reports/steps.txt"}
        assert _events(base, message.message_id, "reporting", last_event_id=jobs.FINAL_EVENT_ID) == (204, [])

        status = httpx.get(f"{base}/api/jobs/{message.message_id}", headers={"Authorization": "Bearer all"})
        assert status.status_code == 200 and status.json()["progress"]["done"] == 30
        unknown = str(uuid.uuid4())
        assert httpx.get(f"{base}/api/jobs/{unknown}", headers={"Authorization": "Bearer all"}).status_code == 404
        assert _events(base, unknown, "all")[0] == 404
        foreign = httpx.get(f"{base}/api/jobs/{message.message_id}", headers={"Authorization": "Bearer posts-only"})
        assert foreign.status_code == 403
        assert _events(base, message.message_id, "posts-only")[0] == 403
