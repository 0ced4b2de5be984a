"""The JSON API: every endpoint, and its refusals (no or bad token, wrong scope, CSRF, bad input, unknown ids)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import JobRecord, ScheduleEvent, ScheduleRow
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.ops.context import OpsContext
from nightshift.ops.models import OpsAudit
from tests.integration.ops.conftest import bearer
from tests.support.ops import PASSWORD
from tests.support.ops_actors import QUEUE, ops_flaky, ops_touch

pytestmark = pytest.mark.integration

READ_ENDPOINTS = [
    "/api/overview",
    "/api/queues",
    f"/api/queues/{QUEUE}",
    "/api/workers",
    "/api/jobs",
    "/api/dead-letters",
    f"/api/dead-letters/{QUEUE}",
    "/api/schedules",
    "/api/actors",
    "/api/actors/ops_touch",
    "/api/audit",
    "/api/catalog",
    "/api/metrics/backlog/users",
]


def _schedule(ctx: OpsContext, name: str = "nightly_touch") -> None:
    with transaction(ctx.sessions) as session:
        session.add(
            ScheduleRow(
                name=name,
                actor="ops_touch",
                queue=QUEUE,
                payload={"path": "/nonexistent/never"},
                cron="0 3 * * *",
                timezone="UTC",
                misfire="skip",
                grace_s=600,
                catch_up_window_s=3600,
                overlap="allow",
                handled_through=dt.datetime.now(dt.UTC),
            )
        )


def _records(ctx: OpsContext, broker: NightshiftRedisBroker) -> dict[str, JobRecord]:
    broker.record_writer.flush()
    with ctx.sessions() as session:
        return {str(row.message_id): row for row in session.scalars(select(JobRecord))}


@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_every_read_endpoint_answers_a_read_token_and_refuses_anonymous_and_bad_tokens(
    client: TestClient, tokens: dict[str, str], path: str
) -> None:
    assert client.get(path, headers=bearer(tokens["read"])).status_code == 200
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer("nso_not-a-token")).status_code == 401
    assert client.get(path, headers=bearer(tokens["publish"])).status_code == 403


def test_overview_and_queues_show_what_is_in_redis(
    client: TestClient, tokens: dict[str, str], broker: NightshiftRedisBroker
) -> None:
    first = ops_touch.send(path="/nonexistent/a")
    ops_touch.send_with_options(kwargs={"path": "/nonexistent/b"}, delay=60_000)

    overview = client.get("/api/overview", headers=bearer(tokens["read"])).json()
    queue = client.get(f"/api/queues/{QUEUE}", headers=bearer(tokens["read"])).json()

    assert len(overview["throughput"]) == 60
    row = next(q for q in overview["queues"] if q["queue"] == QUEUE)
    assert (row["ready"], row["delayed"], row["dead"]) == (1, 1, 0)
    assert "users" in overview["workers"]
    assert [m["job_id"] for m in queue["messages"]] == [first.message_id]
    assert queue["messages"][0]["actor"] == "ops_touch"
    assert len(queue["delayed_messages"]) == 1
    assert dt.datetime.fromisoformat(queue["delayed_messages"][0]["due_at"]) > dt.datetime.now(dt.UTC)


def test_unknown_queue_job_and_schedule_are_404_and_a_malformed_id_is_422(
    client: TestClient, tokens: dict[str, str]
) -> None:
    headers = bearer(tokens["act"])
    unknown = str(uuid.uuid4())
    assert client.get("/api/queues/nope_high", headers=headers).status_code == 404
    response = client.get(f"/api/jobs/{unknown}", headers=headers)
    assert response.status_code == 404
    assert unknown in response.json()["detail"]
    assert client.get("/api/jobs/not-a-uuid", headers=headers).status_code == 422
    assert client.get("/api/schedules/nope", headers=headers).status_code == 404
    assert client.post(f"/api/jobs/{unknown}/revoke", json={}, headers=headers).status_code == 404
    assert client.post("/api/schedules/nope/pause", headers=headers).status_code == 404


def test_a_job_answers_its_status_and_its_event_stream_through_the_api(
    client: TestClient, tokens: dict[str, str], broker: NightshiftRedisBroker
) -> None:
    headers = bearer(tokens["read"])
    message = ops_touch.send(path="/nonexistent/queued")  # no worker: it waits in its queue

    job = client.get(f"/api/jobs/{message.message_id}", headers=headers)
    assert job.status_code == 200
    assert (job.json()["job_id"], job.json()["status"]) == (message.message_id, "queued")
    assert "progress" in job.json() and "result" in job.json()

    unknown = str(uuid.uuid4())
    assert client.get(f"/api/jobs/{unknown}/events", headers=headers).status_code == 404
    assert client.get(f"/api/jobs/{unknown}/events").status_code == 401
    # A client that saw the final event and reconnects is told the stream is over.
    final = client.get(f"/api/jobs/{message.message_id}/events", headers={**headers, "Last-Event-ID": "final"})
    assert final.status_code == 204


def test_a_failing_job_is_searchable_with_its_attempts_error_and_traceback(
    client: TestClient, tokens: dict[str, str], run_worker: Any, ctx: OpsContext, broker: NightshiftRedisBroker
) -> None:
    run_worker({QUEUE})
    message = ops_flaky.send(path="/nonexistent/flaky")
    wait_for(lambda: (r := _records(ctx, broker).get(message.message_id)) and r.status == "dead", what="dead")
    headers = bearer(tokens["read"])

    found = client.get("/api/jobs", params={"actor": "ops_flaky", "status": "dead"}, headers=headers).json()
    job = client.get(f"/api/jobs/{message.message_id}", headers=headers).json()

    assert [j["job_id"] for j in found["jobs"]] == [message.message_id]
    assert (
        client.get("/api/jobs", params={"actor": "ops_flaky", "status": "done"}, headers=headers).json()["jobs"] == []
    )
    assert (
        client.get("/api/jobs", params={"id": message.message_id}, headers=headers).json()["jobs"][0]["status"]
        == "dead"
    )
    assert job["args"] == {"path": "/nonexistent/flaky"}
    assert [a["outcome"] for a in job["attempts_detail"]] == ["retrying", "retrying", "dead"]
    assert "MissingFile" in job["last_error"]
    assert "Traceback" in job["traceback"] and "raise MissingFile" in job["traceback"]
    assert client.get("/api/jobs", params={"status": "nonsense"}, headers=headers).status_code == 422
    stats = client.get("/api/actors", headers=headers).json()["actors"]
    flaky = next(a for a in stats if a["actor"] == "ops_flaky")
    assert flaky["attempts"] == 3 and flaky["failure_rate"] == 1.0


def test_dead_letters_replay_and_delete_by_job_id(
    client: TestClient,
    tokens: dict[str, str],
    run_worker: Any,
    ctx: OpsContext,
    broker: NightshiftRedisBroker,
    tmp_path: Path,
) -> None:
    run_worker({QUEUE})
    fixed, dropped = tmp_path / "fixed", tmp_path / "dropped"
    first, second = ops_flaky.send(path=str(fixed)), ops_flaky.send(path=str(dropped))
    wait_for(
        lambda: (
            len(client.get(f"/api/dead-letters/{QUEUE}", headers=bearer(tokens["read"])).json()["dead_letters"]) == 2
        ),
        what="two dead letters",
    )
    letters = client.get(f"/api/dead-letters/{QUEUE}", headers=bearer(tokens["read"])).json()["dead_letters"]
    assert {d["job_id"] for d in letters} == {first.message_id, second.message_id}
    assert all(d["error_type"] == "MissingFile" and "is missing" in d["reason"] for d in letters)

    unknown = str(uuid.uuid4())
    refused = client.post(
        f"/api/dead-letters/{QUEUE}/replay",
        json={"job_ids": [first.message_id, unknown]},
        headers=bearer(tokens["act"]),
    )
    assert refused.status_code == 404 and unknown in refused.json()["detail"]
    assert (
        client.post(
            f"/api/dead-letters/{QUEUE}/replay", json={"job_ids": [first.message_id]}, headers=bearer(tokens["read"])
        ).status_code
        == 403
    )

    fixed.write_text("the cause is fixed")
    replayed = client.post(
        f"/api/dead-letters/{QUEUE}/replay", json={"job_ids": [first.message_id]}, headers=bearer(tokens["act"])
    )
    deleted = client.post(
        f"/api/dead-letters/{QUEUE}/delete", json={"job_ids": [second.message_id]}, headers=bearer(tokens["act"])
    )

    assert replayed.json() == {"queue": QUEUE, "replayed": 1}
    assert deleted.json() == {"queue": QUEUE, "deleted": 1}
    wait_for(lambda: _records(ctx, broker)[first.message_id].status == "done", what="the replayed job done")
    assert client.get(f"/api/dead-letters/{QUEUE}", headers=bearer(tokens["read"])).json()["dead_letters"] == []
    with ctx.sessions() as session:
        actions = [row.action for row in session.scalars(select(OpsAudit).order_by(OpsAudit.id))]
    assert actions == ["dead_letters.replay", "dead_letters.delete"]
    assert client.post(f"/api/dead-letters/{QUEUE}/replay", json={}, headers=bearer(tokens["act"])).status_code == 422


def test_purge_and_revoke(client: TestClient, tokens: dict[str, str], broker: NightshiftRedisBroker) -> None:
    kept = ops_touch.send(path="/nonexistent/x")
    ops_touch.send(path="/nonexistent/y")
    headers = bearer(tokens["act"])

    revoked = client.post(f"/api/jobs/{kept.message_id}/revoke", json={"terminate": False}, headers=headers)
    purged = client.post(f"/api/queues/{QUEUE}/purge", headers=headers)

    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert purged.json() == {"queue": QUEUE, "purged": 2}
    assert broker.client.llen(broker.keys.queue(QUEUE)) == 0
    assert client.post(f"/api/queues/{QUEUE}/purge", headers=bearer(tokens["read"])).status_code == 403


def test_schedules_pause_resume_cron_and_run_now(
    client: TestClient, tokens: dict[str, str], ctx: OpsContext, broker: NightshiftRedisBroker
) -> None:
    _schedule(ctx)
    headers = bearer(tokens["act"])

    assert client.post("/api/schedules/nightly_touch/pause", headers=headers).json()["change"] == "paused"
    paused = client.get("/api/schedules/nightly_touch", headers=headers).json()
    assert paused["paused"] is True and paused["next_fire"] is None
    assert client.post("/api/schedules/nightly_touch/resume", headers=headers).json()["change"] == "resumed"
    refused = client.post("/api/schedules/nightly_touch/cron", json={"cron": "61 * * * *"}, headers=headers)
    changed = client.post("/api/schedules/nightly_touch/cron", json={"cron": "*/5 * * * *"}, headers=headers)
    run = client.post("/api/schedules/nightly_touch/run", headers=headers).json()

    assert refused.status_code == 422
    assert changed.status_code == 200
    described = client.get("/api/schedules/nightly_touch", headers=headers).json()
    assert described["cron"] == "*/5 * * * *"
    assert [e["kind"] for e in described["history"]] == ["run_now", "set_cron", "resume", "pause"]
    assert described["history"][0]["by"] == "token:actor (api)"
    (body,) = broker.client.hvals(broker.keys.messages(QUEUE))
    assert run["job_id"].encode() in body
    with ctx.sessions() as session:
        assert session.scalar(select(ScheduleRow.paused).where(ScheduleRow.name == "nightly_touch")) is False
        kinds = session.scalars(select(ScheduleEvent.kind)).all()
    assert sorted(kinds) == ["pause", "resume", "run_now", "set_cron"]
    assert client.post("/api/schedules/nightly_touch/pause", headers=bearer(tokens["read"])).status_code == 403


def test_publish_validates_enqueues_and_honours_the_idempotency_key(
    client: TestClient, tokens: dict[str, str], ctx: OpsContext, broker: NightshiftRedisBroker
) -> None:
    headers = bearer(tokens["publish"])

    published = client.post("/api/events/user.registered", json={"user_id": 7}, headers=headers)
    first = client.post(
        "/api/events/user.registered", json={"user_id": 8}, headers={**headers, "Idempotency-Key": "k-1"}
    )
    again = client.post(
        "/api/events/user.registered", json={"user_id": 8}, headers={**headers, "Idempotency-Key": "k-1"}
    )
    other = client.post(
        "/api/events/user.registered", json={"user_id": 9}, headers={**headers, "Idempotency-Key": "k-1"}
    )

    assert published.status_code == 202 and len(published.json()["job_ids"]) == 1
    assert first.json()["job_ids"] == again.json()["job_ids"]
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert other.status_code == 409
    ids = published.json()["job_ids"] + first.json()["job_ids"]
    assert broker.client.llen(broker.keys.queue("users_high")) == 2
    records = _records(ctx, broker)
    assert sorted(records) == sorted(ids)
    assert all(records[i].status == "queued" for i in ids)


@pytest.mark.parametrize(
    ("name", "payload", "status", "named"),
    [
        ("user.registered", {"user_id": "seven"}, 422, "user_id"),
        ("user.registered", {}, 422, "user_id"),
        ("user.registered", {"user_id": 1, "email": "a@b.c"}, 422, "email"),
        ("no.such.event", {"user_id": 1}, 404, "no.such.event"),
    ],
)
def test_publish_refusals_enqueue_nothing(
    client: TestClient,
    tokens: dict[str, str],
    broker: NightshiftRedisBroker,
    name: str,
    payload: Any,
    status: int,
    named: str,
) -> None:
    response = client.post(f"/api/events/{name}", json=payload, headers=bearer(tokens["publish"]))

    assert response.status_code == status
    assert named in response.json()["detail"]
    assert broker.client.llen(broker.keys.queue("users_high")) == 0


def test_publish_needs_the_publish_scope(
    client: TestClient, tokens: dict[str, str], broker: NightshiftRedisBroker
) -> None:
    assert (
        client.post("/api/events/user.registered", json={"user_id": 1}, headers=bearer(tokens["act"])).status_code
        == 403
    )
    assert client.post("/api/events/user.registered", json={"user_id": 1}).status_code == 401
    assert broker.client.llen(broker.keys.queue("users_high")) == 0


def test_catalog_serves_json_schema_per_event_and_version(client: TestClient, tokens: dict[str, str]) -> None:
    catalog = client.get("/api/catalog", headers=bearer(tokens["read"])).json()

    schema = catalog["user.registered"]["versions"]["1"]["schema"]
    assert schema["properties"]["user_id"]["type"] == "integer"
    assert "user_id" in schema["required"]


def test_openapi_docs_metrics_keda_and_probes(
    client: TestClient, tokens: dict[str, str], broker: NightshiftRedisBroker
) -> None:
    ops_touch.send(path="/nonexistent/z")

    assert "/api/events/{name}" in client.get("/api/openapi.json").json()["paths"]
    assert "/api/jobs" in client.get("/api/docs").text
    metrics = client.get("/metrics").text
    assert f'nightshift_queue_messages{{queue="{QUEUE}",state="ready"}} 1.0' in metrics
    assert 'nightshift_live_workers{service="users"} 0.0' in metrics
    assert f'nightshift_pool_backlog{{pool="{QUEUE}"}} 1.0' in metrics
    assert 'nightshift_pool_backlog{pool="users"} 0.0' in metrics
    headers = bearer(tokens["read"])
    queue = client.get(f"/api/metrics/backlog/{QUEUE}", headers=headers).json()
    assert queue["backlog"] == 1 and queue["oldest_age_seconds"] >= 0
    assert client.get("/api/metrics/backlog/users", headers=headers).json() == {"backlog": 0, "oldest_age_seconds": 0.0}
    assert client.get("/api/metrics/backlog/nope", headers=headers).status_code == 404
    assert client.get("/api/metrics/backlog/users").status_code == 401
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").json()["ok"] is True


def _sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token}, follow_redirects=False)


def test_a_session_needs_its_csrf_token_to_change_anything(client: TestClient, operator: str, ctx: OpsContext) -> None:
    _schedule(ctx)
    signed_in = _sign_in(client, operator)
    assert signed_in.status_code == 303
    cookie = signed_in.cookies.get("nightshift_session") or client.cookies.get("nightshift_session")
    assert cookie
    header = signed_in.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header
    csrf = client.get("/").text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]

    assert client.post("/api/schedules/nightly_touch/pause").status_code == 403
    assert client.post("/api/schedules/nightly_touch/pause", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post("/api/schedules/nightly_touch/pause", headers={"X-CSRF-Token": csrf}).status_code == 200


def test_failed_logins_are_throttled_even_for_the_right_password(
    client: TestClient, operator: str, ctx: OpsContext
) -> None:
    for _ in range(ctx.options.login_max_failures):
        assert _sign_in(client, operator, "wrong password!").status_code == 401

    throttled = _sign_in(client, operator)

    assert throttled.status_code == 429
    assert "too many failed logins" in throttled.text
    assert "nightshift_session" not in throttled.headers.get("set-cookie", "")


def test_the_login_form_needs_its_csrf_token(client: TestClient, operator: str) -> None:
    client.get("/login")
    response = client.post("/login", data={"name": operator, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403


def test_schedule_lag_is_how_late_the_last_fire_was_enqueued(
    client: TestClient, tokens: dict[str, str], ctx: OpsContext
) -> None:
    _schedule(ctx)
    fired_for = dt.datetime(2026, 11, 28, 3, tzinfo=dt.UTC)
    with transaction(ctx.sessions) as session:
        row = session.get(ScheduleRow, "nightly_touch")
        assert row is not None
        row.last_fire_at, row.last_enqueued_at = fired_for, fired_for + dt.timedelta(milliseconds=1500)

    assert 'nightshift_schedule_lag_seconds{schedule="nightly_touch"} 1.5' in client.get("/metrics").text
    client.post("/api/schedules/nightly_touch/run", headers=bearer(tokens["act"]))
    metrics = client.get("/metrics").text
    assert 'nightshift_schedule_lag_seconds{schedule="nightly_touch"}' not in metrics  # a run-now is no fire
    assert 'nightshift_schedule_paused{schedule="nightly_touch"} 0.0' in metrics
