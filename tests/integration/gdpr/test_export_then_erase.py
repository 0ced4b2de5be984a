"""A user with data in every service is exported, then erased; nothing of them is left but what the policy keeps."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.cli import main as nightshift
from nightshift.common.contracts.gdpr import GDPR_SERVICES
from nightshift.common.contracts.notifications import SEND_EMAIL
from nightshift.common.db.models import GdprRequest, JobRecord, suppressed_sql
from nightshift.common.events import publish
from nightshift.common.gdpr.proof import verify_proof
from nightshift.common.gdpr.settings import GdprSettings
from nightshift.common.gdpr.workflow import part_message_id
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.redis_keys import RedisKeys
from nightshift.common.storage.local import LocalStorage
from nightshift.notifications.models import EmailDelivery
from nightshift.posts.search import search_posts
from nightshift.posts.trending import cached_trending
from tests.integration.gdpr.conftest import CAMPAIGN, Person, World, wait_until_done
from tests.integration.gdpr.scan import scan_mail_outbox, scan_redis, scan_storage, scan_tables

pytestmark = pytest.mark.integration

#: The tables holding the other person's data, and how to read it: it must not change.
OTHER_ROWS = {
    "users": "SELECT id, email, display_name, locale FROM users WHERE id = :id",
    "auth_tokens": "SELECT id, token_hash FROM auth_tokens WHERE user_id = :id",
    "user_sessions": "SELECT id FROM user_sessions WHERE user_id = :id",
    "posts": "SELECT id, body FROM posts WHERE author_id = :id ORDER BY id",
    "comments": "SELECT id, body FROM comments WHERE author_id = :id ORDER BY id",
    "post_likes": "SELECT post_id FROM post_likes WHERE user_id = :id",
    "shares": "SELECT id FROM shares WHERE user_id = :id",
    "search_documents": "SELECT d.post_id, d.document::text FROM search_documents d "
    "JOIN posts p ON p.id = d.post_id WHERE p.author_id = :id",
    "media": "SELECT id, original_key, variants::text FROM media WHERE owner_id = :id",
    "email_deliveries": "SELECT id, template FROM email_deliveries WHERE user_id = :id",
    "bulk_email_deliveries": "SELECT campaign, status FROM bulk_email_deliveries WHERE user_id = :id",
    "notification_preferences": "SELECT category, channel, enabled FROM notification_preferences "
    "WHERE user_id = :id ORDER BY category, channel",
    "push_devices": "SELECT id, token FROM push_devices WHERE user_id = :id",
    "push_deliveries": "SELECT idempotency_key, device_id FROM push_deliveries "
    "WHERE device_id IN (SELECT id FROM push_devices WHERE user_id = :id) ORDER BY idempotency_key",
    "webhook_endpoints": "SELECT id, url, secret FROM webhook_endpoints WHERE owner_user_id = :id",
    "webhook_deliveries": "SELECT endpoint_id, event_id FROM webhook_deliveries "
    "WHERE endpoint_id IN (SELECT id FROM webhook_endpoints WHERE owner_user_id = :id)",
}


def test_export_holds_all_of_the_user_and_erasure_leaves_nothing(
    world: World, platform: NightshiftRedisBroker, clean_db: Engine
) -> None:
    subject, other = world.subject, world.other
    storage = runtime.storage()
    assert isinstance(storage, LocalStorage)
    outbox = Path(runtime.settings().outbox_dir)

    # --- export ---------------------------------------------------------------------------
    export_id = _cli("export", subject.user_id)["request_id"]
    export = wait_until_done(clean_db, platform, export_id)
    assert export.archive_key is not None and export.link_url is not None

    archive = zipfile.ZipFile(io.BytesIO(storage.get(export.archive_key)))
    names = set(archive.namelist())
    assert {"README.txt", *(f"{service}.json" for service in GDPR_SERVICES)} <= names
    readme = archive.read("README.txt").decode()
    assert all(f"{service}.json" in readme for service in GDPR_SERVICES)
    parts = {service: json.loads(archive.read(f"{service}.json")) for service in GDPR_SERVICES}
    assert parts["users"]["account"][0]["email"] == subject.email
    assert len(parts["users"]["sessions"]) == 1 and len(parts["users"]["tokens"]) == 1
    assert "token_hash" not in json.dumps(parts["users"])
    assert sorted(p["body"] for p in parts["posts"]["posts"]) == sorted(subject.post_bodies)
    assert all("zqlighthouse" in p["hashtags"] for p in parts["posts"]["posts"])
    assert [c["body"] for c in parts["posts"]["comments"]] == subject.comment_bodies
    assert [like["post_id"] for like in parts["posts"]["likes"]] == world.other_posts
    assert [share["post_id"] for share in parts["posts"]["shares"]] == world.other_posts
    assert [m["id"] for m in parts["media"]["media"]] == subject.media_ids
    original = next(key for key in subject.file_keys if key.startswith("uploads/"))
    assert archive.read(parts["media"]["media"][0]["file"]) == storage.get(original)
    notifications = parts["notifications"]
    assert [d["template"] for d in notifications["email_deliveries"]] == ["welcome"]
    assert [(d["campaign"], d["status"]) for d in notifications["bulk_email_deliveries"]] == [(CAMPAIGN, "sent")]
    assert [(p["category"], p["channel"], p["enabled"]) for p in notifications["notification_preferences"]] == [
        ("digest", "push", False),
        ("product_news", "email", True),
    ]
    assert [s["reason"] for s in notifications["email_suppressions"]] == ["bounce"]
    (device,) = notifications["push_devices"]
    assert device["platform"] == "fcm"
    assert [d["device_id"] for d in notifications["push_deliveries"]] == [device["id"], device["id"]]
    (endpoint,) = notifications["webhook_endpoints"]
    assert endpoint["url"] == subject.device_keys[1]
    assert [d["endpoint_id"] for d in notifications["webhook_deliveries"]] == [endpoint["id"]]
    # Never a device token, a Web Push key or a webhook secret.
    assert subject.device_keys[0] not in json.dumps(notifications)
    assert not {"token", "p256dh", "auth", "secret", "previous_secret"} & {
        column for rows in notifications.values() if isinstance(rows, list) for row in rows for column in row
    }
    everything = b"".join(archive.read(name) for name in names)
    leaked = [needle for needle in other.needles if needle.encode() in everything]
    assert leaked == [], f"the archive holds the other person's data: {leaked}"
    # The parts' intermediate objects are gone; the archive alone remains.
    assert list(storage.list(f"gdpr/{export_id}/")) == [export.archive_key]

    # The user got the link by email, in their language; it downloads the archive until it expires.
    mail = _email_for(clean_db, outbox, subject, "gdpr_export_ready")
    assert mail["Subject"] == "Votre export de données Nightshift est prêt"
    link = re.search(r"(/files/\S+)", mail.get_body(("plain",)).get_content()).group(1)  # type: ignore[union-attr]
    path, query = urlsplit(link).path, parse_qs(urlsplit(link).query)
    assert unquote(path.removeprefix("/files/")) == export.archive_key
    assert storage.verify_link(
        export.archive_key, int(query["expires"][0]), query["signature"][0], filename=query["filename"][0]
    )

    # Work that still names the user: a dead letter and a message delayed for later.
    publish(
        "notification.requested", {"user_id": subject.user_id, "template": "no_such_template", "idempotency_key": "x"}
    )
    _wait_dead_letter(platform, SEND_EMAIL.queue_name)
    SEND_EMAIL.send(
        {"user_id": subject.user_id, "template": "welcome", "idempotency_key": "later"},
        broker=platform,
        delay_ms=600_000,
    )
    other_before = _rows_of(clean_db, other)

    # --- erasure ----------------------------------------------------------------------------
    erasure = _cli("erase", subject.user_id)
    assert erasure["created"] is True
    erased = wait_until_done(clean_db, platform, erasure["request_id"])
    platform.record_writer.flush()

    needles = subject.needles
    assert scan_tables(clean_db, needles) == []
    assert scan_storage(storage, needles) == []
    assert list(storage.list("gdpr/")) == []  # the export archive went with the rest
    assert scan_redis(redis.Redis.from_url(runtime.settings().redis_url), needles) == []
    assert scan_redis(platform.client, needles) == []
    assert scan_mail_outbox(outbox, needles) == []
    with Session(clean_db) as session:
        assert search_posts(session, "zqlighthouse") == []
        assert [hit.post_id for hit in search_posts(session, "garden")] == world.other_posts
    cached = cached_trending(redis.Redis.from_url(runtime.settings().redis_url))
    assert cached is not None and "zqlighthouse" not in json.dumps(cached) and "photo" in json.dumps(cached)

    # The other person is untouched, their welcome email still in the outbox.
    assert _rows_of(clean_db, other) == other_before
    assert scan_mail_outbox(outbox, [other.email]) != []
    assert all(storage.exists(key) for key in other.file_keys)

    # The completion record: each service's acknowledgement with counts and time, signed, no personal data.
    record = erased.summary
    assert sorted(record["parts"]) == sorted(GDPR_SERVICES)
    assert all(part["status"] == "done" and part["acknowledged_at"] for part in record["parts"].values())
    assert record["parts"]["posts"]["counts"]["posts"] == 3
    assert record["parts"]["posts"]["counts"]["search_documents"] == 3
    assert record["parts"]["posts"]["counts"]["hashtags"] == 1  # zqlighthouse; photo is also Bruno's
    assert record["parts"]["media"]["counts"] == {"media": 1, "files": len(subject.file_keys)}
    assert record["parts"]["notifications"]["counts"] == {
        "email_deliveries": 2,  # welcome, export ready
        "bulk_email_deliveries": 1,
        "outbox_emails": 3,  # the same three emails' files
        "notification_preferences": 2,
        "email_suppressions": 1,  # kept under the address's digest
        "push_deliveries": 2,
        "push_devices": 1,
        "webhook_deliveries": 1,
        "webhook_endpoints": 1,
    }
    # The campaign batch's record keeps its other recipient and loses the user.
    with Session(clean_db) as session:
        (batch,) = session.scalars(select(JobRecord.args).where(JobRecord.actor == "send_bulk_email")).all()
    assert [r["user_id"] for r in batch["recipients"]] == ["erased", other.user_id]
    assert batch["campaign"] == CAMPAIGN
    # The address stays suppressed, by its digest, without being stored: a new account with it gets no mail.
    with Session(clean_db) as session:
        kept = session.scalars(text("SELECT email FROM email_suppressions")).all()
        suppressed = session.scalar(
            text(f"SELECT {suppressed_sql('CAST(:address AS text)')}"), {"address": subject.email.upper()}
        )
    assert [address.startswith("sha256:") for address in kept] == [True] and suppressed is True
    assert record["finish"]["counts"]["users"] == 1
    assert record["finish"]["counts"]["queued_messages"] == 2
    status = json.loads(_run("gdpr", "status", str(erasure["request_id"]), "--json"))
    assert (status["status"], status["requested_by"]) == ("done", "operator:alice")
    assert {service: part["job_id"] for service, part in status["parts"].items()} == {
        service: part_message_id(erasure["request_id"], "erasure", service) for service in GDPR_SERVICES
    }
    proof = json.loads(_run("gdpr", "proof", str(erasure["request_id"])))
    assert verify_proof(proof, runtime.service_settings(GdprSettings).key("test"))
    assert not [needle for needle in needles if needle in json.dumps(proof)]

    # The audit keeps who asked and when, never the person.
    with Session(clean_db) as session:
        requests = session.scalars(select(GdprRequest).order_by(GdprRequest.id)).all()
    assert [(r.kind, r.requested_by, r.user_id, r.status) for r in requests] == [
        ("export", "operator:alice", None, "done"),
        ("erasure", "operator:alice", None, "done"),
    ]
    assert all(r.requested_at is not None and len(r.subject_digest) == 64 for r in requests)

    # --- erasing twice is a no-op --------------------------------------------------------------
    snapshot = _snapshot(clean_db)
    again = _cli("erase", subject.user_id)
    assert again == {**erasure, "created": False, "status": "done"}
    platform.record_writer.flush()
    assert _snapshot(clean_db) == snapshot


def _cli(command: str, user_id: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_run("gdpr", command, str(user_id), "--by", "operator:alice", "--json"))
    return data


def _run(*args: str) -> str:
    result = CliRunner().invoke(nightshift, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _email_for(engine: Engine, outbox: Path, person: Person, template: str) -> email.message.EmailMessage:
    def sent() -> EmailDelivery | None:
        with Session(engine) as session:
            return session.scalars(
                select(EmailDelivery).where(EmailDelivery.user_id == person.user_id, EmailDelivery.template == template)
            ).one_or_none()

    delivery = wait_for(sent, timeout=30, what=f"the {template} email")
    assert delivery.provider_message_id is not None
    message = email.message_from_bytes(
        (outbox / delivery.provider_message_id).read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, email.message.EmailMessage)
    assert person.email in str(message["To"])
    return message


def _wait_dead_letter(broker: NightshiftRedisBroker, queue: str) -> None:
    key = RedisKeys(broker.namespace).dead(queue)
    wait_for(lambda: broker.client.zcard(key) > 0, timeout=30, what=f"a dead letter in {queue}")


def _rows_of(engine: Engine, person: Person) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(query), {"id": person.user_id})]
            for table, query in OTHER_ROWS.items()
        }


def _snapshot(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table but the job records and audit (the CLI's own publication adds none)."""
    with engine.connect() as connection:
        tables = connection.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('alembic_version', 'job_records', 'task_audit')"
            )
        ).scalars()
        return {
            table: sorted(
                str(row)
                for (row,) in connection.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t'))  # noqa: S608
            )
            for table in sorted(tables)
        }
