"""The weekly digest and bulk email through the real SendGrid client, unsubscribe and provider feedback."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.contracts.notifications import SEND_BULK_EMAIL, BulkEmailBatch, BulkRecipient
from nightshift.common.db.engine import make_session_factory
from nightshift.common.db.models import EmailSuppression, NotificationPreference
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.notifications import bulk
from nightshift.notifications.errors import ProviderUnavailable
from nightshift.notifications.mailers import configured_mailer
from nightshift.notifications.models import BulkEmailDelivery
from nightshift.notifications.public import build_public_server, configured_links
from nightshift.notifications.public_http import PublicServer
from nightshift.posts import digest
from tests.integration.notifications.conftest import PUBLIC_KEY, post_events
from tests.integration.notifications.conftest import signed_headers as _signed
from tests.support.sendgrid_stub import SendGridStub

pytestmark = pytest.mark.integration

TIMEZONE = "Europe/Paris"
#: The Monday whose digest is sent; the week is the seven days before it.
MONDAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def sendgrid_bulk(configure_mail: Callable[..., None], sendgrid_stub: SendGridStub) -> SendGridStub:
    configure_mail(
        MAIL_BACKEND="sendgrid",
        NOTIFICATIONS_SENDGRID_API_KEY="SG.bulk",
        NOTIFICATIONS_SENDGRID_HOST=sendgrid_stub.url,
        NOTIFICATIONS_UNSUBSCRIBE_SECRET="a-test-secret-of-enough-length",
        NOTIFICATIONS_PUBLIC_URL="http://127.0.0.1:1",
        NOTIFICATIONS_SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC_KEY,
        NOTIFICATIONS_SENDGRID_RPS="1000",
    )
    return sendgrid_stub


@pytest.fixture
def public_server(sendgrid_bulk: SendGridStub) -> Iterator[PublicServer]:
    server = build_public_server(port=0).start()
    yield server
    server.stop()


def _seed(engine: Engine) -> dict[str, list[int]]:
    """An author with posts this week and 2,300 readers, some of whom must get nothing."""
    with engine.begin() as connection:
        author = connection.scalar(
            text(
                "INSERT INTO users (email, display_name, locale, last_active_at) "
                "VALUES ('author@example.org', 'Grace Hopper', 'en', :now) RETURNING id"
            ),
            {"now": NOW},
        )
        posts = connection.scalars(
            text(
                "INSERT INTO posts (author_id, body, language, created_at) VALUES "
                "(:a, 'Compilers are fun #python', 'en', :t1), (:a, 'Les compilateurs #café', 'fr', :t2), "
                "(:a, 'Last week''s news', 'en', :old) RETURNING id"
            ),
            {
                "a": author,
                "t1": NOW - dt.timedelta(days=2),
                "t2": NOW - dt.timedelta(days=3),
                "old": NOW - dt.timedelta(days=10),
            },
        ).all()
        readers = connection.scalars(
            text(
                "INSERT INTO users (email, display_name, locale, last_active_at) "
                "SELECT 'reader' || i || '@example.org', 'Reader ' || i, "
                "       CASE WHEN i % 2 = 0 THEN 'fr-FR' ELSE 'en' END, "
                "       CASE WHEN i % 50 = 7 THEN :stale ELSE :now END "
                "FROM generate_series(1, 2300) i ORDER BY i RETURNING id"
            ),
            {"now": NOW - dt.timedelta(days=1), "stale": NOW - dt.timedelta(days=90)},
        ).all()
        # Everyone but every 100th reader liked one of the author's posts (the 100th: no interaction).
        connection.execute(
            text(
                "INSERT INTO post_likes (post_id, user_id, created_at) "
                "SELECT :post, u, :at FROM unnest(CAST(:readers AS bigint[])) WITH ORDINALITY AS r(u, n) "
                "WHERE n % 100 <> 0"
            ),
            {"post": posts[2], "readers": list(readers), "at": NOW - dt.timedelta(days=9)},
        )
        opted_out = [r for n, r in enumerate(readers, 1) if n % 50 == 13]
        connection.execute(
            text(
                "INSERT INTO notification_preferences (user_id, category, channel, enabled) "
                "SELECT u, 'digest', 'email', false FROM unnest(CAST(:users AS bigint[])) u"
            ),
            {"users": opted_out},
        )
        suppressed = [r for n, r in enumerate(readers, 1) if n % 50 == 21]
        connection.execute(
            text(
                "INSERT INTO email_suppressions (email, reason, source) "
                "SELECT upper(email), 'bounce', 'test' FROM users WHERE id = ANY(CAST(:users AS bigint[]))"
            ),
            {"users": suppressed},
        )
        connection.execute(text("UPDATE email_suppressions SET email = lower(email)"))
        # The last one as an erasure keeps it: under the address's digest, the address no longer stored.
        (address,) = connection.execute(text("SELECT email FROM users WHERE id = :id"), {"id": suppressed[-1]}).one()
        connection.execute(
            text("UPDATE email_suppressions SET email = :digest WHERE email = :address"),
            {"digest": "sha256:" + hashlib.sha256(address.lower().encode()).hexdigest(), "address": address.lower()},
        )
    eligible = [r for n, r in enumerate(readers, 1) if n % 100 != 0 and n % 50 not in (7, 13, 21)]
    return {"eligible": eligible, "readers": list(readers), "posts": list(posts[:2]), "author": [author]}


def _recipients(stub: SendGridStub) -> list[dict[str, Any]]:
    return [p for request in stub.requests for p in request.body["personalizations"]]


def _run_digest(engine: Engine, week_end: dt.date = MONDAY) -> digest.DigestOutcome:
    return digest.send_content_digest_email(
        make_session_factory(engine),
        lambda batch: SEND_BULK_EMAIL.send(batch),
        week_end=week_end,
        timezone=TIMEZONE,
        now=NOW,
    )


def _wait_recorded(engine: Engine, campaign: str, count: int) -> None:
    def recorded() -> bool:
        with Session(engine) as session:
            rows = session.scalar(
                select(text("count(*)"))
                .select_from(BulkEmailDelivery)
                .where(
                    BulkEmailDelivery.campaign == campaign, BulkEmailDelivery.status.not_in(["sending", "uncertain"])
                )
            )
        return bool(rows == count)

    wait_for(recorded, timeout=120, what=f"{count} recipients of {campaign} recorded")


def test_digest_reaches_exactly_the_eligible_users_in_their_language_by_1000(
    broker: NightshiftRedisBroker, clean_db: Engine, sendgrid_bulk: SendGridStub, run_worker: Any
) -> None:
    seeded = _seed(clean_db)
    run_worker({SEND_BULK_EMAIL.queue_name})

    outcome = _run_digest(clean_db)

    eligible = seeded["eligible"]
    assert outcome.recipients == len(eligible)
    _wait_recorded(clean_db, "digest:2026-11-23", len(eligible))
    assert len(sendgrid_bulk.requests) == math.ceil(len(eligible) / 1000) == 3
    assert all(len(r.body["personalizations"]) <= 1000 for r in sendgrid_bulk.requests)
    people = _recipients(sendgrid_bulk)
    emails = [p["to"][0]["email"] for p in people]
    assert len(emails) == len(set(emails))
    with Session(clean_db) as session:
        expected: dict[str, str] = dict(
            session.execute(text("SELECT email, locale FROM users WHERE id = ANY(:ids)"), {"ids": eligible}).all()
        )
    assert set(emails) == set(expected)
    for person in people:
        locale = expected[person["to"][0]["email"]]
        subject = person["subject"]
        assert subject.startswith("Votre semaine" if locale.startswith("fr") else "Your week"), (locale, subject)
        # Both posts of the week, the one in the reader's language first; not last week's.
        text_part = person["substitutions"]["-nightshift_text-"]
        first, second = ("Les compilateurs", "Compilers") if locale.startswith("fr") else ("Compilers", "Les comp")
        assert text_part.index(first) < text_part.index(second)
        assert "Last week" not in text_part
        headers = person["headers"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["List-Unsubscribe"].startswith("<http://127.0.0.1:1/unsubscribe?token=")
        args = person["custom_args"]
        assert args["idempotency_key"] == f"digest:2026-11-23:{_user_id(person)}"
        assert (args["nightshift_campaign"], args["nightshift_user"]) == ("digest:2026-11-23", str(_user_id(person)))
    body = sendgrid_bulk.requests[0].body
    assert body["from"] == {"email": "hello@nightshift.test", "name": "Nightshift"}
    assert body["content"] == [
        {"type": "text/plain", "value": "-nightshift_text-"},
        {"type": "text/html", "value": "-nightshift_html-"},
    ]
    # Running the digest again sends nobody a second one.
    before = len(sendgrid_bulk.requests)
    again = _run_digest(clean_db)
    assert again.batches == 3
    wait_for(lambda: _jobs_done(broker, clean_db, 6), timeout=60, what="the second run's batches done")
    assert len(sendgrid_bulk.requests) == before


def _user_id(personalization: dict[str, Any]) -> int:
    token = personalization["headers"]["List-Unsubscribe"].split("token=")[1].rstrip(">")
    return int(token.split(".")[0])


def _jobs_done(broker: NightshiftRedisBroker, engine: Engine, count: int) -> bool:
    broker.record_writer.flush()
    with Session(engine) as session:
        done = session.scalar(
            text("SELECT count(*) FROM job_records WHERE actor = 'send_bulk_email' AND status = 'done'")
        )
    return bool(done == count)


def test_a_batch_retried_after_a_failed_request_sends_nobody_twice(
    clean_db: Engine, sendgrid_bulk: SendGridStub
) -> None:
    seeded = _seed(clean_db)
    batch = BulkEmailBatch(
        campaign="news:2026-11",
        template="digest",
        category="digest",
        recipients=[BulkRecipient(user_id=u, context_ids={"post_ids": seeded["posts"]}) for u in seeded["eligible"]],
    )
    sessions = make_session_factory(clean_db)
    mailer = runtime.resource(configured_mailer)
    links = runtime.resource(configured_links)
    sendgrid_bulk.next_statuses = [202, 503]  # the second request fails after the first was sent

    with pytest.raises(ProviderUnavailable):
        bulk.send_bulk_email(sessions, mailer, batch, links=links)
    outcome = bulk.send_bulk_email(sessions, mailer, batch, links=links)

    assert (outcome.already_done, outcome.sent, outcome.requests) == (1000, len(seeded["eligible"]) - 1000, 2)
    accepted = [r for i, r in enumerate(sendgrid_bulk.requests) if i != 1]
    emails = [p["to"][0]["email"] for r in accepted for p in r.body["personalizations"]]
    assert len(emails) == len(set(emails)) == len(seeded["eligible"])
    with Session(clean_db) as session:
        statuses = session.execute(
            text("SELECT status, count(*) FROM bulk_email_deliveries WHERE campaign = 'news:2026-11' GROUP BY status")
        ).all()
    assert dict(statuses) == {"sent": len(seeded["eligible"])}


def test_suppressed_and_unsubscribed_recipients_are_recorded_as_skipped(
    clean_db: Engine, sendgrid_bulk: SendGridStub
) -> None:
    seeded = _seed(clean_db)
    readers = seeded["readers"][:100]
    batch = BulkEmailBatch(
        campaign="digest:manual",
        template="digest",
        category="digest",
        recipients=[BulkRecipient(user_id=u) for u in [*readers, 999_999]],
    )

    outcome = bulk.send_bulk_email(
        make_session_factory(clean_db),
        runtime.resource(configured_mailer),
        batch,
        links=runtime.resource(configured_links),
    )

    # Readers 13, 63 opted out; 21, 71 suppressed; 7, 57 inactive still get a direct campaign.
    assert dict(outcome.skipped) == {"unsubscribed": 2, "suppressed": 2, "missing": 1}
    assert outcome.sent == 96
    [request] = sendgrid_bulk.requests
    assert len(request.body["personalizations"]) == 96


def test_one_click_unsubscribe_stops_the_next_digest(
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    sendgrid_bulk: SendGridStub,
    public_server: PublicServer,
    run_worker: Any,
) -> None:
    seeded = _seed(clean_db)
    run_worker({SEND_BULK_EMAIL.queue_name})
    _run_digest(clean_db)
    _wait_recorded(clean_db, "digest:2026-11-23", len(seeded["eligible"]))
    person = _recipients(sendgrid_bulk)[0]
    link = person["headers"]["List-Unsubscribe"].strip("<>").replace("127.0.0.1:1", f"127.0.0.1:{public_server.port}")

    page = urllib.request.urlopen(link).read().decode()  # a GET (a mail scanner) changes nothing
    assert "Unsubscribe</button>" in page
    with Session(clean_db) as session:
        assert session.get(NotificationPreference, (_user_id(person), "digest", "email")) is None
    request = urllib.request.Request(link, data=b"List-Unsubscribe=One-Click", method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    assert urllib.request.urlopen(request).status == 200
    with Session(clean_db) as session:
        preference = session.get(NotificationPreference, (_user_id(person), "digest", "email"))
        assert preference is not None and (preference.enabled, preference.source) == (False, "one_click")

    sendgrid_bulk.requests.clear()
    next_week = _run_digest(clean_db, MONDAY + dt.timedelta(days=7))
    assert next_week.recipients == 0  # no post next week: nobody; run it on the same week's data instead
    with clean_db.begin() as connection:
        connection.execute(text("UPDATE posts SET created_at = created_at + interval '7 days'"))
    rerun = _run_digest(clean_db, MONDAY + dt.timedelta(days=7))
    assert rerun.recipients == len(seeded["eligible"]) - 1
    _wait_recorded(clean_db, "digest:2026-11-30", len(seeded["eligible"]) - 1)
    emails = {p["to"][0]["email"] for p in _recipients(sendgrid_bulk)}
    assert person["to"][0]["email"] not in emails

    forged = link.replace("token=", "token=1").rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(forged, data=b"List-Unsubscribe=One-Click", method="POST"))
    assert refused.value.code == 400


def test_a_signed_bounce_event_suppresses_and_a_tampered_one_is_refused(
    clean_db: Engine, sendgrid_bulk: SendGridStub, public_server: PublicServer, make_user: Callable[..., int]
) -> None:
    url = f"http://127.0.0.1:{public_server.port}/providers/sendgrid/events"
    events = [
        {"email": "Ada@Example.org", "event": "bounce", "type": "bounce", "custom_args": {"idempotency_key": "x"}},
        {"email": "bob@example.org", "event": "delivered"},
    ]
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))

    tampered = body.replace(b"bob@", b"eve@").replace(b"delivered", b"spamreport")
    assert post_events(url, tampered, _signed(body, timestamp)) == 403
    assert post_events(url, body, {**_signed(body, timestamp), "X-Twilio-Email-Event-Webhook-Timestamp": "1"}) == 403
    with Session(clean_db) as session:
        assert session.scalars(select(EmailSuppression)).all() == []

    assert post_events(url, body, _signed(body, timestamp)) == 200
    with Session(clean_db) as session:
        [row] = session.scalars(select(EmailSuppression)).all()
        assert (row.email, row.reason, row.source) == ("ada@example.org", "bounce", "sendgrid")

    user = make_user(email="ada@example.org")
    outcome = bulk.send_bulk_email(
        make_session_factory(clean_db),
        runtime.resource(configured_mailer),
        BulkEmailBatch(campaign="c1", template="digest", category="security", recipients=[BulkRecipient(user_id=user)]),
        links=runtime.resource(configured_links),
    )
    assert dict(outcome.skipped) == {"suppressed": 1}
    assert sendgrid_bulk.requests == []
