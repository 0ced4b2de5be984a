"""``nightshift schedule`` commands against the real database and broker."""

from __future__ import annotations

import json

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common.cli import main
from nightshift.common.db.models import JobRecord, ScheduleEvent, ScheduleRow
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.redis_keys import RedisKeys


@pytest.fixture
def cli(broker: NightshiftRedisBroker, clean_db: Engine) -> CliRunner:
    return CliRunner()


def test_list_shows_the_declared_schedules_before_any_scheduler_ran(cli: CliRunner) -> None:
    result = cli.invoke(main, ["schedule", "list", "--json"])

    assert result.exit_code == 0, result.output
    listed = {row["name"]: row for row in json.loads(result.output)}
    tokens = listed["cleanup_expired_tokens"]
    assert tokens["cron"] == "0 2 * * *"
    assert tokens["timezone"] == "Europe/Paris"
    assert tokens["queue"] == "users_low"
    assert tokens["next_fire"].endswith(("T01:00:00+00:00", "T00:00:00+00:00"))  # 02:00 Paris, CET or CEST
    assert listed["update_user_statistics"]["cron"] == "0 3 * * *"


def test_changes_are_stored_with_who_made_them(cli: CliRunner, clean_db: Engine) -> None:
    assert cli.invoke(main, ["schedule", "pause", "cleanup_expired_tokens", "--by", "alice"]).exit_code == 0
    assert (
        cli.invoke(main, ["schedule", "set-cron", "cleanup_expired_tokens", "30 2 * * *", "--by", "bob"]).exit_code == 0
    )

    with Session(clean_db) as session:
        row = session.get(ScheduleRow, "cleanup_expired_tokens")
        events = session.scalars(select(ScheduleEvent).order_by(ScheduleEvent.id)).all()
    assert row is not None
    assert (row.paused, row.cron_override, row.cron, row.changed_by) == (True, "30 2 * * *", "0 2 * * *", "bob")
    assert [(e.kind, e.by) for e in events] == [("pause", "alice"), ("set_cron", "bob")]

    listing = cli.invoke(main, ["schedule", "list"]).output
    assert "cleanup_expired_tokens  [paused]  '30 2 * * *' Europe/Paris" in listing
    assert "changed:     cron '30 2 * * *' by bob" in listing

    history = cli.invoke(main, ["schedule", "history", "cleanup_expired_tokens"]).output.splitlines()
    assert [line.split()[2] for line in history] == ["set_cron", "pause"]
    assert history[0].endswith("by bob") and history[1].endswith("by alice")

    assert cli.invoke(main, ["schedule", "set-cron", "cleanup_expired_tokens", "--declared"]).exit_code == 0
    with Session(clean_db) as session:
        assert session.scalar(select(ScheduleRow.cron_override)) is None


def test_run_now_enqueues_once_and_list_shows_its_outcome(
    cli: CliRunner, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    result = cli.invoke(main, ["schedule", "run", "update_user_statistics", "--by", "carol"])

    assert result.exit_code == 0, result.output
    message_id = result.output.split()[0]
    queued = [json.loads(body) for body in redis_client.hvals(RedisKeys().messages("users_normal"))]
    assert [(m["message_id"], m["actor_name"]) for m in queued] == [(message_id, "update_user_statistics")]
    with Session(clean_db) as session:
        record = wait_for(lambda: session.get(JobRecord, message_id), what="the job record")
        assert record.trigger == "schedule:update_user_statistics"
    listed = {r["name"]: r for r in json.loads(cli.invoke(main, ["schedule", "list", "--json"]).output)}
    assert listed["update_user_statistics"]["last_outcome"] == "queued"
    assert listed["update_user_statistics"]["changed_by"] == "carol"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["pause", "nope"], "unknown schedule 'nope'"),
        (["set-cron", "cleanup_expired_tokens", "0 25 * * *"], "cron '0 25 * * *'"),
        (["set-cron", "cleanup_expired_tokens"], "give either CRON or --declared"),
        (["run", "nope"], "unknown schedule 'nope'"),
        (["history", "nope"], "unknown schedule 'nope'"),
    ],
)
def test_bad_requests_are_refused_naming_what_is_wrong(cli: CliRunner, args: list[str], complaint: str) -> None:
    result = cli.invoke(main, ["schedule", *args])

    assert result.exit_code != 0
    assert complaint in result.output
