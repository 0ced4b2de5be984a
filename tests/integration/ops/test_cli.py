"""``nightshift inspect …``, ``job``, ``revoke``, ``purge`` and ``ops …``: tables, ``--json``, unknown ids exit 1."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from nightshift.common import records
from nightshift.common.cli import main
from nightshift.common.db.models import JobRecord
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.ops.accounts import authenticate, token_principal
from nightshift.ops.context import OpsContext
from nightshift.ops.models import OpsAudit
from tests.support.ops_actors import QUEUE, ops_flaky, ops_long, ops_touch

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _test_queue(monkeypatch: pytest.MonkeyPatch, ctx: OpsContext) -> None:
    monkeypatch.setenv("OPS_EXTRA_QUEUES", QUEUE)


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def _status(ctx: OpsContext, broker: NightshiftRedisBroker, job_id: str) -> str | None:
    broker.record_writer.flush()
    with ctx.sessions() as session:
        return session.scalar(select(JobRecord.status).where(JobRecord.message_id == uuid.UUID(job_id)))


def test_inspect_queues_as_a_table_and_as_json(broker: NightshiftRedisBroker) -> None:
    ops_touch.send(path="/nonexistent/a")

    shown = run("inspect", "queues")
    as_json = json.loads(run("inspect", "queues", "--json").output)

    assert shown.exit_code == 0
    assert shown.output.splitlines()[0].split() == [
        "QUEUE",
        "READY",
        "IN_FLIGHT",
        "DELAYED",
        "DEAD",
        "OLDEST_AGE_S",
        "BACKLOG",
    ]
    assert any(line.split()[:3] == [QUEUE, "1", "0"] for line in shown.output.splitlines())
    assert next(q for q in as_json if q["queue"] == QUEUE)["backlog"] == 1


def test_inspect_active_and_workers_show_a_running_job(
    run_worker: Any, tmp_path: Path, broker: NightshiftRedisBroker, ctx: OpsContext
) -> None:
    run_worker({QUEUE}, threads=1)
    message = ops_long.send(folder=str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists(), what="the long job started")

    active = wait_for(
        lambda: (rows := json.loads(run("inspect", "active", "--json").output)) and rows, what="an active job listed"
    )
    workers = json.loads(run("inspect", "workers", "--json").output)
    table = run("inspect", "active").output

    assert [row["job_id"] for row in active] == [message.message_id]
    assert active[0]["actor"] == "ops_long"
    assert workers and QUEUE in workers[0]["queues"]
    assert message.message_id in table
    assert run("revoke", message.message_id, "--terminate").exit_code == 0
    wait_for(lambda: _status(ctx, broker, message.message_id) == "revoked", timeout=10, what="terminated")


def test_inspect_stats_and_scheduled(
    run_worker: Any, tmp_path: Path, broker: NightshiftRedisBroker, ctx: OpsContext
) -> None:
    run_worker({QUEUE})
    done = ops_touch.send(path=str(tmp_path / "ran"))
    wait_for(lambda: _status(ctx, broker, done.message_id) == "done", what="job done")
    ops_touch.send_with_options(kwargs={"path": "/nonexistent/later"}, delay=3_600_000)

    stats = json.loads(run("inspect", "stats", "--json").output)
    scheduled = json.loads(run("inspect", "scheduled", "--json").output)

    touch = next(row for row in stats if row["actor"] == "ops_touch")
    assert touch["attempts"] == 1 and touch["success_rate"] == 1.0
    assert [m["actor"] for m in scheduled["delayed"]] == ["ops_touch"]
    assert "ops_touch" in run("inspect", "stats").output


def test_job_shows_a_dead_job_and_an_unknown_id_is_an_error(
    run_worker: Any, broker: NightshiftRedisBroker, ctx: OpsContext
) -> None:
    run_worker({QUEUE})
    message = ops_flaky.send(path="/nonexistent/flaky")
    wait_for(lambda: _status(ctx, broker, message.message_id) == "dead", what="dead")

    shown = run("job", message.message_id)
    as_json = json.loads(run("job", message.message_id, "--json").output)
    unknown = str(uuid.uuid4())
    missing = run("job", unknown)
    malformed = run("job", "not-an-id")

    assert shown.exit_code == 0 and "dead" in shown.output and "MissingFile" in shown.output
    assert "Traceback" in shown.output
    assert as_json["attempts"] == 3 and as_json["args"] == {"path": "/nonexistent/flaky"}
    assert missing.exit_code == 1 and unknown in missing.output
    assert malformed.exit_code == 1 and "not a job id" in malformed.output


def test_revoke_before_start_means_it_never_runs(
    run_worker: Any, tmp_path: Path, broker: NightshiftRedisBroker, ctx: OpsContext
) -> None:
    revoked = ops_touch.send(path=str(tmp_path / "revoked"))
    kept = ops_touch.send(path=str(tmp_path / "kept"))

    result = run("revoke", revoked.message_id)
    run_worker({QUEUE})

    assert result.exit_code == 0 and revoked.message_id in result.output
    wait_for(lambda: (tmp_path / "kept").exists(), what="the other job ran")
    wait_for(lambda: _status(ctx, broker, revoked.message_id) == "revoked", what="recorded as revoked")
    assert not (tmp_path / "revoked").exists()
    assert _status(ctx, broker, kept.message_id) == "done"
    with ctx.sessions() as session:
        audit = session.scalars(select(OpsAudit)).one()
    assert (audit.action, audit.target, audit.via) == ("job.revoke", revoked.message_id, "cli")


def test_revoke_terminate_stops_a_running_thirty_second_job(
    run_worker: Any, tmp_path: Path, broker: NightshiftRedisBroker, ctx: OpsContext
) -> None:
    run_worker({QUEUE}, threads=1)
    message = ops_long.send(folder=str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists(), what="the long job started")

    assert run("revoke", message.message_id, "--terminate").exit_code == 0

    wait_for(lambda: _status(ctx, broker, message.message_id) == "revoked", timeout=10, what="terminated")
    assert not (tmp_path / "finished").exists()


def test_revoke_an_unknown_id_is_an_error(broker: NightshiftRedisBroker) -> None:
    unknown = str(uuid.uuid4())
    result = run("revoke", unknown)
    assert result.exit_code == 1
    assert unknown in result.output


def test_purge_asks_unless_yes(broker: NightshiftRedisBroker) -> None:
    ops_touch.send(path="/nonexistent/a")
    ops_touch.send(path="/nonexistent/b")

    declined = run("purge", QUEUE, stdin="n\n")
    assert declined.exit_code == 1 and broker.client.llen(broker.keys.queue(QUEUE)) == 2
    confirmed = run("purge", QUEUE, stdin="y\n")
    assert confirmed.exit_code == 0 and "purged 2" in confirmed.output
    ops_touch.send(path="/nonexistent/c")
    assert "purged 1" in run("purge", QUEUE, "--yes").output
    assert broker.client.llen(broker.keys.queue(QUEUE)) == 0
    unknown = run("purge", "nope_high", "--yes")
    assert unknown.exit_code == 1 and "unknown queue" in unknown.output


def test_purged_jobs_are_recorded_purged_for_good(broker: NightshiftRedisBroker, ctx: OpsContext) -> None:
    first, second = ops_touch.send(path="/nonexistent/a"), ops_touch.send(path="/nonexistent/b")
    broker.record_writer.flush()

    assert "purged 2" in run("purge", QUEUE, "--yes").output
    # A "queued" event of the first flushed late (its publisher's writer was slow) moves nothing back.
    records.write(
        ctx.sessions.kw["bind"],
        [records.JobEvent(first.message_id, "ops_touch", QUEUE, "queued", dt.datetime.now(dt.UTC))],
    )

    with ctx.sessions() as session:
        found = {str(row.message_id): row for row in session.scalars(select(JobRecord))}
    assert {job_id: (row.status, row.last_error) for job_id, row in found.items()} == {
        first.message_id: ("purged", "purged by operator"),
        second.message_id: ("purged", "purged by operator"),
    }


def test_ops_create_user_and_token(ctx: OpsContext) -> None:
    created = run("ops", "create-user", "ada", "--role", "operator")
    password = created.output.rsplit("password: ", 1)[1].strip()
    token = run("ops", "create-token", "ci", "--scope", "read", "--scope", "publish").output.strip()

    assert authenticate(ctx.sessions, "ada", password).role == "operator"
    assert token_principal(ctx.sessions, token).scopes == {"read", "publish"}
    assert run("ops", "create-user", "bob", "--role", "admin").exit_code == 2
    assert run("ops", "create-user", "bob", "--role", "viewer", "--password", "short").exit_code == 1
    assert run("ops", "revoke-token", "ci").exit_code == 0
    assert run("ops", "revoke-token", "ci").exit_code == 1
    assert "operator.create" in run("ops", "audit").output
