"""The dashboard in a real headless Chromium: login, dead letters and replay, schedules, roles, CSRF."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import JobRecord, ScheduleRow
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.ops.context import OpsContext
from tests.support.ops import PASSWORD
from tests.support.ops_actors import QUEUE, ops_flaky

pytestmark = pytest.mark.integration


def sign_in(page: Any, name: str = "olga", target: str = "/") -> None:
    page.goto(target)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("header nav")


def _schedule(ctx: OpsContext) -> None:
    with transaction(ctx.sessions) as session:
        session.add(
            ScheduleRow(
                name="nightly_touch",
                actor="ops_touch",
                queue=QUEUE,
                payload={"path": "/nonexistent/never"},
                cron="0 3 * * *",
                timezone="UTC",
                misfire="skip",
                grace_s=600,
                catch_up_window_s=3600,
                overlap="allow",
                description="Touch a file every night.",
                handled_through=dt.datetime.now(dt.UTC),
            )
        )


def _status(ctx: OpsContext, broker: NightshiftRedisBroker, job_id: str) -> str | None:
    broker.record_writer.flush()
    with ctx.sessions() as session:
        return session.scalar(select(JobRecord.status).where(JobRecord.message_id == uuid.UUID(job_id)))


def test_an_anonymous_visitor_is_sent_to_the_login_and_back(page: Any) -> None:
    page.goto("/dead-letters")
    assert "/login?next=/dead-letters" in page.url

    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    page.wait_for_url("**/dead-letters")
    assert page.inner_text("h1") == "Dead letters"


def test_a_wrong_password_is_refused(page: Any) -> None:
    page.goto("/login")
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "wrong name or password" in page.inner_text("p.error")


def test_the_overview_goes_live(page: Any) -> None:
    sign_in(page)
    assert page.inner_text("h1") == "Overview"
    page.wait_for_selector("#live.on")
    assert page.locator("#throughput-chart canvas").count() == 1
    assert page.locator("#queues tbody tr", has_text=QUEUE).count() == 1


def test_a_failing_job_dies_with_its_reason_and_is_replayed_from_the_page(
    page: Any, run_worker: Any, ctx: OpsContext, broker: NightshiftRedisBroker, tmp_path: Path
) -> None:
    run_worker({QUEUE})
    cause = tmp_path / "needed"
    message = ops_flaky.send(path=str(cause))
    sign_in(page)

    page.goto(f"/jobs/{message.message_id}")
    wait_for(lambda: _status(ctx, broker, message.message_id) == "dead", what="the job retried and died")
    page.reload()
    assert "dead" in page.inner_text(".facts")
    assert page.locator("table tbody tr").count() == 3  # two retries, then dead
    page.goto(f"/dead-letters/{QUEUE}")
    row = page.locator("tr", has_text=message.message_id)
    assert "MissingFile" in row.inner_text() and "is missing" in row.inner_text()

    cause.write_text("the cause is fixed")
    row.locator("button.replay-one").click()

    assert "replayed 1" in page.inner_text(".flash")
    wait_for(lambda: _status(ctx, broker, message.message_id) == "done", what="the replayed job done")
    page.goto(f"/jobs/{message.message_id}")
    assert "done" in page.inner_text(".facts")


def test_pause_resume_and_run_a_schedule_now(page: Any, ctx: OpsContext, broker: NightshiftRedisBroker) -> None:
    _schedule(ctx)
    sign_in(page, target="/schedules/nightly_touch")

    page.click("text=Pause")
    assert page.inner_text(".flash") == "paused"
    assert "paused" in page.inner_text("h1")
    page.click("text=Resume")
    assert page.inner_text(".flash") == "resumed"
    page.click("text=Run now")

    flash = page.inner_text(".flash")
    job_id = flash.rsplit(" ", 1)[1]
    assert flash.startswith("enqueued job")
    assert broker.client.hlen(broker.keys.messages(QUEUE)) == 1
    history = page.inner_text("table")
    assert "run_now" in history and "pause" in history and "resume" in history
    with ctx.sessions() as session:
        assert session.scalar(select(ScheduleRow.paused)) is False
    assert job_id in str(broker.client.hvals(broker.keys.messages(QUEUE))[0])


def test_a_viewer_sees_no_actions_and_is_refused_with_403(page: Any, ctx: OpsContext) -> None:
    _schedule(ctx)
    sign_in(page, name="victor", target="/schedules/nightly_touch")

    assert page.locator("text=Pause").count() == 0
    csrf = page.get_attribute("meta[name=csrf-token]", "content")
    refused = page.request.post("/schedules/nightly_touch/pause", form={"csrf_token": csrf})

    assert refused.status == 403
    with ctx.sessions() as session:
        assert session.scalar(select(ScheduleRow.paused)) is False


def test_a_form_post_without_the_csrf_token_is_refused(page: Any, ctx: OpsContext) -> None:
    _schedule(ctx)
    sign_in(page, target="/schedules/nightly_touch")

    refused = page.request.post("/schedules/nightly_touch/pause", form={"cron": ""})
    wrong = page.request.post("/schedules/nightly_touch/pause", form={"csrf_token": "forged"})

    assert (refused.status, wrong.status) == (403, 403)
    assert "CSRF" in refused.text()
    with ctx.sessions() as session:
        assert session.scalar(select(ScheduleRow.paused)) is False
