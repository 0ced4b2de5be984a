"""``nightshift schedule pause | resume | set-cron`` reach the running active scheduler
within five seconds and survive a restart of every scheduler.

"Within five seconds" is read from the data, never from a timer in the test: no
message of the changed schedule may be scheduled later than five seconds after
the command returned unless it follows the change.
"""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.processes import wait_for
from nightshift.common.settings import CommonSettings
from tests.support.processes import nightshift
from tests.support.scheduled_messages import ScheduledMessage, by_schedule, scheduled_messages
from tests.support.scheduler_processes import TEST_SCHEDULER_ENV, lease_holder_pid, scheduler_processes, status
from tests.support.scheduler_schedules import TICK

pytestmark = pytest.mark.e2e

#: How soon a change must reach the active scheduler.
APPLIED_WITHIN = dt.timedelta(seconds=5)

NAME = "ticks.coalesce"


def test_pause_resume_and_set_cron_apply_within_five_seconds_and_survive_restarts(
    env: CommonSettings,
    redis_client: redis.Redis[bytes],
    clean_db: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in TEST_SCHEDULER_ENV.items():
        monkeypatch.setenv(variable, value)
    app = redis.Redis.from_url(env.redis_url)

    def fires(name: str) -> list[ScheduledMessage]:
        return by_schedule(scheduled_messages(redis_client, TICK.queue_name)).get(name, [])

    def clock_reaches(moment: dt.datetime) -> None:
        """Wait until the every-second reference schedule has fired at *moment*."""
        wait_for(
            lambda: any(m.scheduled_for >= moment for m in fires("ticks.catch_up")),
            timeout=30,
            what=f"a fire at {moment}",
        )

    def run(*args: str) -> dt.datetime:
        result = nightshift("schedule", *args, "--by", "alice")
        assert result.returncode == 0, result.stderr
        return dt.datetime.now(dt.UTC)

    with scheduler_processes(2, tmp_path, "first") as processes:
        wait_for(lambda: fires(NAME), timeout=60, what="a first fire")

        changed = run("set-cron", NAME, "*/3 * * * * *")
        clock_reaches(changed + APPLIED_WITHIN + dt.timedelta(seconds=3))
        after = [m.scheduled_for for m in fires(NAME) if m.scheduled_for > changed + APPLIED_WITHIN]
        assert after, "the new expression should fire"
        assert all(t.second % 3 == 0 for t in after)

        paused = run("pause", NAME)
        clock_reaches(paused + APPLIED_WITHIN + dt.timedelta(seconds=1))
        assert not [m for m in fires(NAME) if m.scheduled_for > paused + APPLIED_WITHIN]
        active_port = processes[wait_for(lambda: lease_holder_pid(app), what="the active one")][1]
        active_status = status(active_port)
        assert active_status is not None
        shown = {s["name"]: s for s in active_status["schedules"]}[NAME]
        assert shown["paused"] is True
        assert shown["cron"] == "*/3 * * * * *"
        for process, _ in processes.values():
            process.send_signal(signal.SIGTERM)
        for process, _ in processes.values():
            process.wait(timeout=20)
    stopped = dt.datetime.now(dt.UTC)

    # Every scheduler restarted: still paused, still on the new expression.
    with scheduler_processes(2, tmp_path, "second"):
        clock_reaches(stopped + dt.timedelta(seconds=3))
        assert not [m for m in fires(NAME) if m.scheduled_for > paused + APPLIED_WITHIN]

        resumed = run("resume", NAME)
        wait_for(
            lambda: [m for m in fires(NAME) if m.scheduled_for > resumed],
            timeout=APPLIED_WITHIN.total_seconds() + 3,
            what="a fire after resuming",
        )
        after_resume = [m.scheduled_for for m in fires(NAME) if m.scheduled_for > resumed]
        assert min(after_resume) <= resumed + APPLIED_WITHIN
        assert all(t.second % 3 == 0 for t in after_resume)

    listing = nightshift("schedule", "list")
    assert listing.returncode == 0, listing.stderr
    block = listing.stdout.split(NAME, 1)[1].split("\nticks.", 1)[0]
    assert "[active]" in block
    assert "'*/3 * * * * *'" in block
    assert "changed:     resumed by alice" in block
    assert "outcome: queued" in block
