"""Exports: CSV.gz and XLSX match the database, resume from their part log, expire; refusals; the whole flow."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import openpyxl
import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common import jobs, runtime
from nightshift.common.contracts.notifications import SEND_EMAIL
from nightshift.common.contracts.posts import ExportRequest
from nightshift.common.events import publish
from nightshift.common.outbox import OutboxRelay
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.common.storage import Storage, open_storage
from nightshift.common.storage.local import LocalStorage
from nightshift.posts.errors import ExportRefused
from nightshift.posts.exports import ExportLimits, export_content, purge_expired_exports
from tests.integration.posts.conftest import Content
from tests.integration.storage.s3server import moto_server, new_bucket
from tests.support.jobs_app import jobs_app, serve_jobs_app

pytestmark = pytest.mark.integration

#: The smallest part: a few thousand rows make several of them.
SMALL_PARTS = ExportLimits(part_bytes=16 * 1024, timezone="UTC", sheet_rows=1000, max_range_days=31)
SINCE, UNTIL = dt.date(2026, 3, 1), dt.date(2026, 3, 20)


def add_posts(engine: Engine, author: int, count: int, *, start: dt.datetime, step_s: int = 60) -> None:
    """*count* posts by *author* from *start*, bodies with the characters CSV must quote."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO posts (author_id, body, language, created_at, updated_at) "
                "SELECT :a, 'post ' || i || ', \"quoted\"' || CASE WHEN i % 7 = 0 THEN E'\\nsecond line é' ELSE '' END "
                "|| repeat(md5(i::text), 1 + i % 3), "
                "CASE i % 3 WHEN 0 THEN 'en' WHEN 1 THEN 'fr' END, "
                ":start + make_interval(secs => i * :step), "
                "CASE WHEN i % 5 = 0 THEN :start + make_interval(secs => i * :step + 30) END "
                "FROM generate_series(1, :n) i"
            ),
            {"a": author, "n": count, "start": start, "step": step_s},
        )


def database_rows(engine: Engine, sql: str, **params: Any) -> list[list[str]]:
    """Rows as PostgreSQL prints them (what COPY writes), NULL as the empty string."""
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL TIME ZONE 'UTC'"))
        return [["" if v is None else str(v) for v in row] for row in connection.execute(text(sql), params)]


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(gzip.decompress(data).decode(), newline="")))


def part_log(engine: Engine, export_id: int) -> list[tuple[int, int, int]]:
    with engine.connect() as connection:
        return [
            (row.number, row.rows, row.attempt)
            for row in connection.execute(
                text("SELECT number, rows, attempt FROM export_parts WHERE export_id = :e ORDER BY number"),
                {"e": export_id},
            )
        ]


def _naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """How a spreadsheet holds a time: in UTC, without its zone."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment is not None else None


@pytest.fixture
def storage(env: CommonSettings) -> Storage:
    return runtime.storage()


def test_csv_export_matches_the_database_row_for_row(
    content: Content, sessions: sessionmaker[Session], storage: Storage
) -> None:
    author, other = content.user(), content.user()
    add_posts(content.engine, author, 3000, start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), step_s=300)
    add_posts(content.engine, other, 500, start=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    add_posts(content.engine, author, 50, start=dt.datetime(2026, 2, 20, tzinfo=dt.UTC))  # before the range
    request = ExportRequest(requester_id=author, what="content", format="csv", since=SINCE, until=UNTIL)
    reports: list[tuple[int, int | None, str | None]] = []

    outcome = export_content(
        sessions,
        storage,
        request,
        job_id=str(uuid.uuid4()),
        limits=SMALL_PARTS,
        report=lambda *progress: reports.append(progress),
    )

    expected = database_rows(
        content.engine,
        "SELECT id, author_id, created_at::text, updated_at::text, language, body FROM posts "
        "WHERE created_at >= :s AND created_at < :u ORDER BY id",
        s=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        u=dt.datetime(2026, 3, 21, tzinfo=dt.UTC),
    )
    rows = csv_rows(storage.get(outcome.key))
    assert rows[0] == ["post_id", "author_id", "created_at", "updated_at", "language", "body"]
    assert rows[1:] == expected
    assert len(expected) == outcome.rows == 3500
    assert outcome.size == storage.size(outcome.key)
    parts = part_log(content.engine, outcome.export_id)
    assert len(parts) == outcome.parts > 1 and sum(r for _, r, _ in parts) == 3500
    done = [r[0] for r in reports]
    assert done == sorted(done) and done[-1] == 3500 and reports[-1][1] == 3500


def test_own_posts_and_author_analytics_hold_only_the_requesters_rows(
    content: Content, sessions: sessionmaker[Session], storage: Storage
) -> None:
    author, other = content.user(), content.user()
    add_posts(content.engine, author, 200, start=dt.datetime(2026, 3, 5, tzinfo=dt.UTC))
    add_posts(content.engine, other, 100, start=dt.datetime(2026, 3, 5, tzinfo=dt.UTC))
    with content.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO post_engagement (post_id, likes, comments, shares, score, as_of) "
                "SELECT id, id % 4, id % 3, id % 2, id / 10.0, '2026-03-21' FROM posts WHERE id % 2 = 0"
            )
        )

    own = export_content(
        sessions,
        storage,
        ExportRequest(requester_id=author, what="own_posts", format="csv"),
        job_id=str(uuid.uuid4()),
        limits=SMALL_PARTS,
    )
    analytics = export_content(
        sessions,
        storage,
        ExportRequest(requester_id=author, what="author_analytics", format="csv", since=SINCE, until=UNTIL),
        job_id=str(uuid.uuid4()),
        limits=SMALL_PARTS,
    )

    assert csv_rows(storage.get(own.key))[1:] == database_rows(
        content.engine,
        "SELECT id, created_at::text, updated_at::text, language, body FROM posts WHERE author_id = :a ORDER BY id",
        a=author,
    )
    assert csv_rows(storage.get(analytics.key)) == [
        ["post_id", "created_at", "likes", "comments", "shares", "score", "score_as_of"],
        *database_rows(
            content.engine,
            "SELECT p.id, p.created_at::text, coalesce(e.likes, 0), coalesce(e.comments, 0), coalesce(e.shares, 0), "
            "e.score::text, e.as_of::text FROM posts p LEFT JOIN post_engagement e ON e.post_id = p.id "
            "WHERE p.author_id = :a ORDER BY p.id",
            a=author,
        ),
    ]


def test_xlsx_export_opens_in_openpyxl_split_across_sheets(
    content: Content, sessions: sessionmaker[Session], storage: Storage
) -> None:
    author = content.user()
    add_posts(content.engine, author, 2500, start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))

    outcome = export_content(
        sessions,
        storage,
        ExportRequest(requester_id=author, what="own_posts", format="xlsx"),
        job_id=str(uuid.uuid4()),
        limits=SMALL_PARTS,
    )

    workbook = openpyxl.load_workbook(io.BytesIO(storage.get(outcome.key)), read_only=True)
    assert workbook.sheetnames == ["Export 1", "Export 2", "Export 3"]
    sheets = [list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets]
    assert [len(rows) for rows in sheets] == [1001, 1001, 501]  # a header on each
    assert all(rows[0] == ("post_id", "created_at", "updated_at", "language", "body") for rows in sheets)
    read = [row for rows in sheets for row in rows[1:]]
    with content.engine.connect() as connection:
        expected = [
            (
                r.id,
                _naive_utc(r.created_at),
                _naive_utc(r.updated_at),
                r.language,
                r.body,
            )
            for r in connection.execute(
                text("SELECT id, created_at, updated_at, language, body FROM posts ORDER BY id")
            )
        ]
    assert [(int(r[0]), *r[1:]) for r in read] == expected
    assert outcome.rows == 2500


def test_a_csv_export_stopped_mid_way_resumes_from_its_last_part(
    content: Content, sessions: sessionmaker[Session], storage: Storage
) -> None:
    author = content.user()
    add_posts(content.engine, author, 10_000, start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    request = ExportRequest(requester_id=author, what="own_posts", format="csv")
    job_id = str(uuid.uuid4())
    uploaded = [0]

    class Crash(Exception):
        pass

    def crash_after_three_parts() -> None:
        uploaded[0] += 1
        if uploaded[0] > 3:
            raise Crash

    with pytest.raises(Crash):
        export_content(
            sessions, storage, request, job_id=job_id, limits=SMALL_PARTS, check_abort=crash_after_three_parts
        )
    outcome = export_content(sessions, storage, request, job_id=job_id, limits=SMALL_PARTS, attempt=2)

    parts = part_log(content.engine, outcome.export_id)
    assert [attempt for _, _, attempt in parts[:3]] == [1, 1, 1]
    assert {attempt for _, _, attempt in parts[3:]} == {2}
    assert outcome.parts_written == len(parts) - 3 and outcome.resumed
    assert csv_rows(storage.get(outcome.key))[1:] == database_rows(
        content.engine, "SELECT id, created_at::text, updated_at::text, language, body FROM posts ORDER BY id"
    )
    again = export_content(sessions, storage, request, job_id=job_id, limits=SMALL_PARTS, attempt=3)
    assert (again.export_id, again.parts_written, again.rows) == (outcome.export_id, 0, 10_000)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"requester_id": 999_999}, "requester 999999 does not exist"),
        ({"since": dt.date(2026, 1, 1), "until": dt.date(2026, 2, 1)}, "covers 32 days, over the maximum of 31"),
        ({"format": "pdf"}, "unknown export format 'pdf' \\(known: csv, xlsx\\)"),
    ],
)
def test_refusals_name_their_reason_and_leave_nothing(
    content: Content, sessions: sessionmaker[Session], storage: Storage, change: dict[str, Any], reason: str
) -> None:
    author = content.user()
    fields: dict[str, Any] = {
        "requester_id": author,
        "what": "content",
        "format": "csv",
        "since": SINCE,
        "until": UNTIL,
    }
    request = ExportRequest(**{**fields, **change})
    with pytest.raises(ExportRefused, match=reason):
        export_content(sessions, storage, request, job_id=str(uuid.uuid4()), limits=SMALL_PARTS)
    assert content.table("SELECT count(*) FROM exports") == [(0,)]
    assert list(storage.list("exports/")) == []


def test_expired_exports_are_purged_and_abandoned_uploads_dropped(
    content: Content, sessions: sessionmaker[Session], storage: Storage
) -> None:
    author = content.user()
    add_posts(content.engine, author, 300, start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    request = ExportRequest(requester_id=author, what="own_posts", format="csv")
    finished = export_content(sessions, storage, request, job_id=str(uuid.uuid4()), limits=SMALL_PARTS)

    def stop() -> None:
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        export_content(sessions, storage, request, job_id=str(uuid.uuid4()), limits=SMALL_PARTS, check_abort=stop)
    assert len(list(Path(str(storage.root), ".uploads").iterdir())) == 1  # type: ignore[attr-defined]

    nothing = purge_expired_exports(sessions, storage, abandon_after=dt.timedelta(hours=1))
    assert (nothing.expired, nothing.abandoned) == (0, 0) and storage.exists(finished.key)
    later = finished.expires_at + dt.timedelta(hours=2)
    purged = purge_expired_exports(sessions, storage, abandon_after=dt.timedelta(hours=1), now=later)

    assert (purged.expired, purged.abandoned) == (1, 1)
    assert not storage.exists(finished.key)
    assert list(Path(str(storage.root), ".uploads").iterdir()) == []  # type: ignore[attr-defined]
    assert content.table("SELECT status FROM exports ORDER BY id") == [("expired",), ("abandoned",)]
    assert content.table("SELECT count(*) FROM export_parts") == [(0,)]


@pytest.fixture
def posts_and_mail_worker(broker: NightshiftRedisBroker, run_worker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    import nightshift.notifications.actors  # noqa: F401 - declares send_email on the broker

    monkeypatch.setenv("MAIL_BACKEND", "outbox")
    monkeypatch.setenv("NOTIFICATIONS_FROM_ADDRESS", "hello@nightshift.test")
    monkeypatch.setenv("POSTS_EXPORT_PART_BYTES", str(16 * 1024))
    monkeypatch.setenv("POSTS_EXPORT_LINK_TTL_S", "3")
    runtime.reset()
    return run_worker({"posts_high", SEND_EMAIL.queue_name}, threads=2)


def _relay(broker: NightshiftRedisBroker, engine: Engine) -> Iterator[None]:
    relay = OutboxRelay(engine, broker)
    while True:
        relay.relay_once()
        yield None


def test_an_export_requested_through_the_catalog_streams_progress_links_and_emails(
    env: CommonSettings, content: Content, broker: NightshiftRedisBroker, posts_and_mail_worker: Any
) -> None:
    author = content.user()
    with content.engine.begin() as connection:
        connection.execute(text("UPDATE users SET locale = 'fr', display_name = 'Zoé' WHERE id = :a"), {"a": author})
    add_posts(content.engine, author, 3000, start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    client = redis.Redis.from_url(env.redis_url)
    storage = runtime.storage()
    assert isinstance(storage, LocalStorage)

    [message] = publish("export.requested", {"requester_id": author, "what": "own_posts", "format": "csv"})
    broker.record_writer.flush()
    updates = list(
        jobs.open_job_events(
            message.message_id, engine=content.engine, redis=client, broker=broker, poll_interval_s=0.1
        )
    )

    events = [u for u in updates if u is not None]
    progress = [u.data["done"] for u in events if u.event == "progress"]
    assert progress and progress == sorted(progress) and progress[-1] == 3000
    final = events[-1]
    assert (final.event, final.id, final.data["status"]) == ("status", jobs.FINAL_EVENT_ID, "done")
    result = final.data["result"]
    assert (result["rows"], result["format"], result["key"]) == (
        3000,
        "csv",
        f"exports/{author}/{message.message_id}.csv.gz",
    )

    with serve_jobs_app(jobs_app(content.engine, client, {}, storage=storage)) as base:
        download = httpx.get(base + result["link"])
        assert download.status_code == 200
        assert csv_rows(download.content)[1:] == database_rows(
            content.engine, "SELECT id, created_at::text, updated_at::text, language, body FROM posts ORDER BY id"
        )
        assert "nightshift-own-posts-" in download.headers["content-disposition"]
        wait_for(lambda: httpx.get(base + result["link"]).status_code == 403, timeout=20, what="the link to expire")

    relay = _relay(broker, content.engine)
    outbox = Path(env.outbox_dir)
    emails = wait_for(
        lambda: next(relay) or (list(outbox.glob("export_ready*.eml")) or None), timeout=30, what="the email"
    )
    email = message_from_bytes(emails[0].read_bytes(), policy=policy.default)
    assert email["Subject"] == "Votre export Nightshift est prêt"
    body = email.get_body(("plain",))
    assert body is not None and result["link"] in body.get_content()


def test_s3_exports_are_multipart_uploads_with_a_presigned_link_of_the_configured_lifetime(
    content: Content, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    author = content.user()
    add_posts(content.engine, author, 2000, start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    with moto_server() as endpoint:
        bucket = new_bucket(endpoint, monkeypatch)
        s3 = open_storage(f"s3://{bucket}/exports-test?endpoint_url={endpoint}&region_name=us-east-1")
        limits = ExportLimits(part_bytes=5 * 1024 * 1024, timezone="UTC", link_ttl=dt.timedelta(hours=6))
        request = ExportRequest(requester_id=author, what="own_posts", format="csv")

        outcome = export_content(sessions, s3, request, job_id=str(uuid.uuid4()), limits=limits)

        query = parse_qs(urlsplit(outcome.link).query)
        assert query["X-Amz-Expires"] == [str(6 * 3600)]
        downloaded = httpx.get(outcome.link)
        assert downloaded.status_code == 200
        assert csv_rows(downloaded.content)[1:] == database_rows(
            content.engine, "SELECT id, created_at::text, updated_at::text, language, body FROM posts ORDER BY id"
        )
        xlsx = export_content(
            sessions, s3, request.model_copy(update={"format": "xlsx"}), job_id=str(uuid.uuid4()), limits=limits
        )
        sheet = openpyxl.load_workbook(io.BytesIO(s3.get(xlsx.key)), read_only=True).worksheets[0]
        assert sum(1 for _ in sheet.iter_rows()) == 2001
