"""The maintenance jobs' effects and their idempotency: purges past retention (and nothing younger),
cache statistics of a workload the test made, a failing storage probe alerted, a seeded week's report;
and the alerts' JSON API and pages."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, select, text

from nightshift.common import runtime
from nightshift.common.contracts.notifications import SEND_OPERATOR_EMAIL
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.common.storage import open_storage
from nightshift.ops import actor_rollup, charts, maintenance, report_email, reports
from nightshift.ops.context import OpsContext
from nightshift.ops.models import Alert, AlertNotice, MaintenanceRun, OpsAudit, Report
from nightshift.ops.settings import OpsSettings
from tests.integration.ops.conftest import bearer
from tests.support.expired_data import EXPECTED_PURGE, NOW, seed_expired_and_young
from tests.support.ops import PASSWORD
from tests.support.ops_actors import QUEUE
from tests.support.sendgrid_stub import sendgrid_stub_server


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608 - test tables


def test_purge_deletes_what_is_past_retention_in_batches_and_nothing_younger(
    ctx: OpsContext, broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    seed_expired_and_young(clean_db, redis_client, broker)
    options = OpsSettings(purge_batch_size=2)
    actor_rollup.roll_up(ctx.sessions, batch_size=10)  # a minute of the old audit and one of the young

    purged = maintenance.purge_expired_data(ctx.sessions, broker, [QUEUE], options, now=NOW)

    assert purged == EXPECTED_PURGE
    assert (_count(clean_db, "job_records"), _count(clean_db, "task_audit"), _count(clean_db, "outbox_events")) == (
        4,
        3,
        3,
    )
    assert sorted(member.decode() for member in redis_client.zrange(broker.keys.dead(QUEUE), 0, -1)) == [
        "young-0",
        "young-1",
        "young-2",
    ]
    assert redis_client.hlen(broker.keys.dead_messages(QUEUE)) == 3
    with ctx.sessions() as session:
        [run] = session.scalars(select(MaintenanceRun).where(MaintenanceRun.kind == "purge")).all()
        assert run.result["total"] == 15

    again = maintenance.purge_expired_data(ctx.sessions, broker, [QUEUE], options, now=NOW)
    assert set(again.values()) == {0}


def test_cache_statistics_match_the_workload(
    ctx: OpsContext, env: CommonSettings, redis_client: redis.Redis[bytes]
) -> None:
    cache = redis.Redis.from_url(env.redis_url)
    options = OpsSettings()
    first = maintenance.collect_cache_stats(ctx.sessions, cache, options, run_key="cache_stats:1")
    assert first["hits"] is None  # nothing to compare with yet

    for number in range(10):
        cache.set(f"feed:{number}:page", "x", ex=3600)
    for _ in range(5):
        cache.set(f"session:{uuid.uuid4().hex}1", "x")
    for number in range(10):
        assert cache.get(f"feed:{number}:page") == b"x"
    for number in range(4):
        assert cache.get(f"missing:{number}") is None

    second = maintenance.collect_cache_stats(ctx.sessions, cache, options, run_key="cache_stats:2")
    assert (second["hits"], second["misses"], second["hit_ratio"]) == (10, 4, round(10 / 14, 4))
    assert second["keys"] == 15
    families = {family["family"]: family for family in second["families"]}
    assert families["feed:*:page"]["sampled"] == 10
    assert families["feed:*:page"]["no_ttl_share"] == 0
    assert 3500 <= families["feed:*:page"]["ttl_median_s"] <= 3600
    assert families["session:*"]["no_ttl_share"] == 1
    assert families["session:*"]["advice"].startswith("set a TTL")

    # A redelivered run records nothing twice.
    maintenance.collect_cache_stats(ctx.sessions, cache, options, run_key="cache_stats:2")
    with ctx.sessions() as session:
        assert len(session.scalars(select(MaintenanceRun).where(MaintenanceRun.kind == "cache_stats")).all()) == 2


def test_a_failing_storage_probe_is_recorded_and_alerted_once(
    ctx: OpsContext,
    env: CommonSettings,
    broker: NightshiftRedisBroker,
    redis_client: redis.Redis[bytes],
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "storage-root"
    broken = open_storage(f"file://{blocked}")
    blocked.rmdir()
    blocked.write_text("a file where the storage root should be")  # the volume is gone: nothing can be written
    app = redis.Redis.from_url(env.redis_url)

    for _ in range(2):  # a second failing run: still the same alert, no new notice
        checks = maintenance.check_dependencies(ctx.sessions, broker, redis_client, app, broken, env, ctx.options)
        assert {check.name: check.ok for check in checks} == {
            "postgresql": True,
            "redis_broker": True,
            "redis_app": True,
            "storage": False,
            "mail": True,
        }
    with ctx.sessions() as session:
        [alert] = session.scalars(select(Alert)).all()
        assert (alert.key, alert.severity, alert.resolved_at) == ("dependency:storage", "critical", None)
        assert len(session.scalars(select(AlertNotice)).all()) == 1
        runs = session.scalars(select(MaintenanceRun).where(MaintenanceRun.kind == "dependencies")).all()
        assert [run.ok for run in runs] == [False, False]

    maintenance.check_dependencies(ctx.sessions, broker, redis_client, app, runtime.storage(), env, ctx.options)
    with ctx.sessions() as session:
        [alert] = session.scalars(select(Alert)).all()
        assert alert.resolved_at is not None
        assert sorted(n.kind for n in session.scalars(select(AlertNotice))) == ["fired", "resolved"]


def seed_week(engine: Engine) -> None:
    """A week of work (Monday 23 to Sunday 29 November 2026, Paris) and some outside it."""
    insert = text(
        "INSERT INTO task_audit (message_id, actor, queue, attempt, outcome, started_at, finished_at, duration_ms)"
        " SELECT gen_random_uuid(), :actor, :queue, 1, :outcome, :at, :at, :ms FROM generate_series(1, :n)"
    )
    with engine.begin() as connection:
        for day in range(7):
            at = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC) + dt.timedelta(days=day)
            connection.execute(
                insert,
                {"actor": "send_email", "queue": "notifications_high", "outcome": "done", "at": at, "ms": 40, "n": 10},
            )
            connection.execute(
                insert,
                {
                    "actor": "send_email",
                    "queue": "notifications_high",
                    "outcome": "retrying",
                    "at": at,
                    "ms": 40,
                    "n": 1,
                },
            )
            connection.execute(
                insert,
                {
                    "actor": "process_media_upload",
                    "queue": "media_high",
                    "outcome": "done",
                    "at": at,
                    "ms": 200 + 100 * day,
                    "n": 5,
                },
            )
        outside = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
        connection.execute(
            insert,
            {"actor": "send_email", "queue": "notifications_high", "outcome": "dead", "at": outside, "ms": 1, "n": 50},
        )
        for _ in range(3):
            connection.execute(
                text(
                    "INSERT INTO job_records (message_id, actor, queue, status, updated_at) "
                    "VALUES (gen_random_uuid(), 'process_media_upload', 'media_high', 'dead', :at)"
                ),
                {"at": dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)},
            )
        connection.execute(
            text(
                "INSERT INTO ops_alerts (key, rule, source, severity, summary, fired_at, last_seen_at, resolved_at) "
                "VALUES ('backlog:media_high', 'backlog', 'ops', 'warning', 'Queue media_high has a backlog of 1200', "
                ":at, :at, :at)"
            ),
            {"at": dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)},
        )


def test_a_seeded_weeks_report(ctx: OpsContext, clean_db: Engine) -> None:
    seed_week(clean_db)

    report_id, new = reports.build_report(ctx.sessions, "weekly", now=NOW, timezone="Europe/Paris")

    assert new
    with ctx.sessions() as session:
        report = session.get(Report, report_id)
        assert report is not None
        data = report.figures
        html = report.html
    assert (data["start"], data["end"]) == ("2026-11-22T23:00:00+00:00", "2026-11-29T23:00:00+00:00")
    assert (data["first_day"], data["last_day"]) == ("2026-11-23", "2026-11-29")
    assert "weekly report: 2026-11-23 \u2013 2026-11-29" in html
    assert (data["attempts"], data["failed"], data["dead_total"], len(data["alerts"])) == (112, 7, 3, 1)
    assert data["services"] == [
        {"service": "media", "attempts": 35, "failed": 0, "failure_rate": 0.0},
        {"service": "notifications", "attempts": 77, "failed": 7, "failure_rate": round(7 / 77, 4)},
    ]
    assert [(row["actor"], row["failed"]) for row in data["top_failing"]] == [("send_email", 7)]
    assert [day["processed"] for day in data["days"]] == [15] * 7
    assert [day["p95_ms"] for day in data["days"]] == [200.0 + 100 * day for day in range(7)]
    assert data["dead_letters"] == [{"queue": "media_high", "dead": 3}]
    assert '<b id="attempts">112</b>' in html and '<b id="dead">3</b>' in html
    assert html.count('src="data:image/png;base64,') == 2

    again, new_again = reports.build_report(
        ctx.sessions, "weekly", now=NOW + dt.timedelta(hours=3), timezone="Europe/Paris"
    )
    assert (again, new_again) == (report_id, False)


def test_the_alerts_api_lists_and_silences_with_an_audit(
    client: TestClient, ctx: OpsContext, tokens: dict[str, str], clean_db: Engine
) -> None:
    with clean_db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ops_alerts (key, rule, source, severity, summary, facts) VALUES "
                "('backlog:media_high', 'backlog', 'ops', 'warning', 'Queue media_high has a backlog of 1200', "
                "'{\"backlog\": 1200}')"
            )
        )
    listed = client.get("/api/alerts", headers=bearer(tokens["read"])).json()
    [active] = listed["active"]
    assert (active["key"], active["facts"], listed["recent"]) == ("backlog:media_high", {"backlog": 1200}, [])
    one = client.get(f"/api/alerts/{active['id']}", headers=bearer(tokens["read"])).json()
    assert one["notices"] == [] and one["link"].endswith(f"/alerts/{active['id']}")
    assert client.get("/api/alerts/999999", headers=bearer(tokens["read"])).status_code == 404

    body = {"key": "backlog:", "duration_s": 3600, "reason": "migrating media"}
    assert client.post("/api/alerts/silences", json=body, headers=bearer(tokens["read"])).status_code == 403
    silenced = client.post("/api/alerts/silences", json=body, headers=bearer(tokens["act"]))
    assert silenced.status_code == 200, silenced.text
    assert (
        client.get("/api/alerts", headers=bearer(tokens["read"])).json()["silences"][0]["reason"] == "migrating media"
    )
    ended = client.post(f"/api/alerts/silences/{silenced.json()['id']}/end", headers=bearer(tokens["act"]))
    assert ended.status_code == 200
    assert client.get("/api/alerts", headers=bearer(tokens["read"])).json()["silences"] == []
    with ctx.sessions() as session:
        audit = [(row.action, row.target, row.who) for row in session.scalars(select(OpsAudit).order_by(OpsAudit.id))]
    assert audit == [("alerts.silence", "backlog:", "token:actor"), ("alerts.end_silence", "backlog:", "token:actor")]
    refused = client.post("/api/alerts/silences", json={**body, "reason": ""}, headers=bearer(tokens["act"]))
    assert refused.status_code == 422
    assert json.loads(client.get("/api/maintenance", headers=bearer(tokens["read"])).text)["cache"] is None


def test_the_report_and_alert_pages(client: TestClient, ctx: OpsContext, operator: str, clean_db: Engine) -> None:
    seed_week(clean_db)
    report_id, _ = reports.build_report(ctx.sessions, "weekly", now=NOW, timezone="Europe/Paris")
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"name": operator, "password": PASSWORD, "csrf_token": token}, follow_redirects=False)
    alerts_page = client.get("/alerts")
    assert alerts_page.status_code == 200
    assert "Queue media_high has a backlog of 1200" in alerts_page.text  # the seeded week's resolved alert
    listing = client.get("/reports")
    assert f'href="/reports/{report_id}"' in listing.text
    shown = client.get(f"/reports/{report_id}")
    assert shown.status_code == 200 and '<b id="attempts">112</b>' in shown.text
    assert client.get("/maintenance").status_code == 200


def test_the_report_actor_emails_the_operators_once(
    ctx: OpsContext, broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    from nightshift.common.contracts.ops import ReportRequest
    from nightshift.ops.actors import build_report

    for _ in range(2):  # a redelivered message finds the report emailed already
        build_report.fn(**ReportRequest(period="monthly").model_dump())  # type: ignore[attr-defined]
    queued = [json.loads(body) for body in redis_client.hvals(broker.keys.messages(SEND_OPERATOR_EMAIL.queue_name))]
    [message] = [m for m in queued if m["actor_name"] == SEND_OPERATOR_EMAIL.actor_name]
    assert "Nightshift monthly report" in message["kwargs"]["subject"]
    with ctx.sessions() as session:
        [report] = session.scalars(select(Report)).all()
        assert report.emailed_at is not None
    assert message["kwargs"]["idempotency_key"] == f"report:{report.id}"
    # Keys in the message, the images in storage: no bytes travel through Redis.
    assert [image["storage_key"] for image in message["kwargs"]["images"]] == [
        f"ops/reports/{report.id}/throughput.png",
        f"ops/reports/{report.id}/p95.png",
    ]
    assert "data:image" not in message["kwargs"]["html"]


def test_the_seeded_weeks_report_reaches_the_operators_with_its_charts_inline(
    ctx: OpsContext, clean_db: Engine, monkeypatch: pytest.MonkeyPatch, run_worker: Any
) -> None:
    """The report's email through notifications' worker and the SendGrid client, to a recording server."""
    import nightshift.notifications.actors  # noqa: F401 - declares send_operator_email

    seed_week(clean_db)
    with sendgrid_stub_server() as sendgrid:
        for name, value in {
            "MAIL_BACKEND": "sendgrid",
            "NOTIFICATIONS_SENDGRID_API_KEY": "SG.test-key",
            "NOTIFICATIONS_SENDGRID_HOST": sendgrid.url,
            "NOTIFICATIONS_FROM_ADDRESS": "hello@nightshift.test",
            "NOTIFICATIONS_OPERATORS_ADDRESS": "ops-team@nightshift.test",
        }.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        run_worker({SEND_OPERATOR_EMAIL.queue_name})
        report_id, _ = reports.build_report(ctx.sessions, "weekly", now=NOW, timezone="Europe/Paris")

        sent = [
            report_email.email_report(ctx.sessions, runtime.storage(), report_id, public_url="https://ops.example")
            for _ in range(2)
        ]

        assert sent == [True, False]
        wait_for(lambda: sendgrid.requests, timeout=30, what="the report's email at SendGrid")
    [request] = sendgrid.requests
    body = request.body
    assert body["personalizations"][0]["to"] == [{"email": "ops-team@nightshift.test", "name": "Nightshift operators"}]
    assert body["subject"] == (
        "Nightshift weekly report 2026-11-23 to 2026-11-29: 112 attempts, 7 failed, 3 dead letters, 1 alerts"
    )
    [html] = [part["value"] for part in body["content"] if part["type"] == "text/html"]
    assert '<b id="attempts">112</b>' in html and '<b id="dead">3</b>' in html  # the figures, as on the page
    assert f'href="https://ops.example/reports/{report_id}"' in html
    assert "data:image" not in html
    attachments = body["attachments"]
    assert sorted(attachment["content_id"] for attachment in attachments) == ["p95-chart", "throughput-chart"]
    for attachment in attachments:
        assert html.count(f'src="cid:{attachment["content_id"]}"') == 1
        assert (attachment["disposition"], attachment["type"]) == ("inline", "image/png")
        image = Image.open(io.BytesIO(base64.b64decode(attachment["content"])))
        assert (image.format, image.size) == ("PNG", (charts.WIDTH, charts.HEIGHT))
        image.verify()
