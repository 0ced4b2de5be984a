"""Outgoing webhooks: signatures a receiver verifies, SSRF refusals, a breaker per endpoint, disabling."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.breakers import read_state
from nightshift.common.contracts import notifications as notification_contracts
from nightshift.common.contracts.notifications import DISPATCH_WEBHOOKS, WebhookDelivery
from nightshift.common.db.engine import make_session_factory
from nightshift.common.db.models import JobRecord, OutboxEvent
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.notifications.models import PushDevice, WebhookDeliveryLog, WebhookEndpoint
from nightshift.notifications.webhooks import delivery as webhooks
from nightshift.notifications.webhooks.endpoints import register_endpoint, rotate_secret
from nightshift.notifications.webhooks.safe_http import UnsafeUrl, check_url
from nightshift.notifications.webhooks.signing import InvalidWebhookSignature, verify
from tests.support.http_server import QuietHandler, serving

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """An integration's endpoint on loopback, recording every request."""

    url: str = ""
    status: int = 204
    location: str | None = None
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def by_event(self) -> dict[str, list[int]]:
        """Statuses answered per ``webhook-id``."""
        answered: dict[str, list[int]] = {}
        for headers, _ in self.requests:
            answered.setdefault(headers["webhook-id"], []).append(int(headers["x-answered"]))
        return answered


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    stub = Receiver()
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                status = stub.status
                headers = {name.lower(): value for name, value in self.headers.items()}
                headers["x-answered"] = str(status)
                stub.requests.append((headers, body))
            self.send_response(status)
            if stub.location:
                self.send_header("Location", stub.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as url:
        stub.url = f"{url}/hooks/nightshift"
        yield stub


def _policy(**overrides: Any) -> webhooks.WebhookPolicy:
    values: dict[str, Any] = {"timeout_s": 2.0, "breaker_failures": 2, "breaker_open_ms": 300, "allow_loopback": True}
    return webhooks.WebhookPolicy(**{**values, **overrides})


def _delivery(endpoint_id: int, event_id: str = "evt-1") -> WebhookDelivery:
    return WebhookDelivery(
        endpoint_id=endpoint_id,
        event="post.created",
        event_id=event_id,
        occurred_at=dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC),
        data={"post_id": 42},
    )


def _receiver_check(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What an integration computes, without our code: HMAC-SHA256 of "<id>.<timestamp>.<body>"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split(" "))


def test_a_delivery_verifies_with_the_receivers_secret_and_a_tampered_one_does_not(
    env: CommonSettings, clean_db: Engine, receiver: Receiver, make_user: Callable[..., int]
) -> None:
    sessions = make_session_factory(clean_db)
    endpoint = register_endpoint(sessions, make_user(), receiver.url, ["post.created"], allow_loopback=True)
    client: redis.Redis[bytes] = redis.Redis.from_url(env.redis_url)

    assert webhooks.deliver_webhook(sessions, client, _delivery(endpoint.id), policy=_policy()) == "delivered"

    [(headers, body)] = receiver.requests
    assert json.loads(body) == {
        "type": "post.created",
        "timestamp": "2026-11-29T12:00:00+00:00",
        "data": {"post_id": 42},
    }
    assert headers["webhook-id"] == "evt-1"
    assert _receiver_check(endpoint.secret, headers, body)
    verify(endpoint.secret, headers, body)
    tampered = body.replace(b"42", b"43")
    assert not _receiver_check(endpoint.secret, headers, tampered)
    with pytest.raises(InvalidWebhookSignature, match="no webhook signature matches"):
        verify(endpoint.secret, headers, tampered)
    with pytest.raises(InvalidWebhookSignature):
        verify("whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode(), headers, body)
    # A second run of the same message sends nothing more.
    assert webhooks.deliver_webhook(sessions, client, _delivery(endpoint.id), policy=_policy()) == "already_delivered"

    # Rotation: both secrets sign until the old one expires.
    new_secret = rotate_secret(sessions, endpoint.id, overlap=dt.timedelta(hours=1))
    webhooks.deliver_webhook(sessions, client, _delivery(endpoint.id, "evt-2"), policy=_policy())
    headers, body = receiver.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert _receiver_check(endpoint.secret, headers, body) and _receiver_check(new_secret, headers, body)
    with clean_db.begin() as connection:
        connection.execute(text("UPDATE webhook_endpoints SET previous_expires_at = now() - interval '1 second'"))
    webhooks.deliver_webhook(sessions, client, _delivery(endpoint.id, "evt-3"), policy=_policy())
    headers, body = receiver.requests[-1]
    assert _receiver_check(new_secret, headers, body) and not _receiver_check(endpoint.secret, headers, body)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/x", "https://127.0.0.1/x", "https://169.254.169.254/latest/meta-data", "https://10.0.0.5/"],
)
def test_urls_resolving_to_loopback_private_or_metadata_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url)


def test_refused_at_registration_and_at_delivery_and_redirects_are_not_followed(
    env: CommonSettings, clean_db: Engine, receiver: Receiver, make_user: Callable[..., int]
) -> None:
    sessions = make_session_factory(clean_db)
    owner = make_user()
    for url in ("https://localhost/hook", "https://169.254.169.254/hook", receiver.url):
        with pytest.raises(UnsafeUrl):
            register_endpoint(sessions, owner, url, ["post.created"])
    endpoint = register_endpoint(sessions, owner, receiver.url, ["post.created"], allow_loopback=True)
    client: redis.Redis[bytes] = redis.Redis.from_url(env.redis_url)

    with pytest.raises(UnsafeUrl, match=r"https|loopback"):
        webhooks.deliver_webhook(sessions, client, _delivery(endpoint.id), policy=_policy(allow_loopback=False))
    assert receiver.requests == []
    with Session(clean_db) as session:
        row = session.get(WebhookDeliveryLog, (endpoint.id, "evt-1"))
        assert row is not None and row.status == "dropped"

    receiver.status, receiver.location = 302, "http://169.254.169.254/latest/meta-data"
    with pytest.raises(webhooks.WebhookFailed, match="answered 302"):
        webhooks.deliver_webhook(sessions, client, _delivery(endpoint.id, "evt-redirect"), policy=_policy())
    assert len(receiver.requests) == 1  # the redirect was not followed


def test_failing_endpoint_opens_its_breaker_later_messages_wait_and_delivery_resumes(
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    receiver: Receiver,
    make_user: Callable[..., int],
    configure_mail: Callable[..., None],
    run_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure_mail(
        NOTIFICATIONS_WEBHOOKS_ALLOW_LOOPBACK="true",
        NOTIFICATIONS_WEBHOOK_BREAKER_FAILURES="2",
        NOTIFICATIONS_WEBHOOK_BREAKER_OPEN_S="0.4",
    )
    monkeypatch.setattr(notification_contracts, "DELIVER_WEBHOOK_OPTIONS", {"retry_delays_ms": [30] * 8})
    sessions = make_session_factory(clean_db)
    endpoint = register_endpoint(sessions, make_user(), receiver.url, ["post.created"], allow_loopback=True)
    receiver.status = 500
    run_worker({DISPATCH_WEBHOOKS.queue_name}, threads=4)

    events = [publish("post.created", {"post_id": n})[1].message_id for n in (1, 2, 3)]
    client: redis.Redis[bytes] = redis.Redis.from_url(runtime.settings().redis_url)
    wait_for(lambda: read_state(client, f"webhook:{endpoint.id}").transitions["open"] >= 2, what="breaker re-opened")
    failed_while_down = len(receiver.requests)
    receiver.status = 204

    def all_delivered() -> bool:
        return all(204 in receiver.by_event().get(event, []) for event in events)

    wait_for(all_delivered, timeout=30, what="every event delivered once the endpoint recovered")
    answered = receiver.by_event()
    assert all(statuses.count(204) == 1 for statuses in answered.values())
    # Without a breaker 3 messages would have made 3 x 9 attempts against the failing endpoint.
    assert failed_while_down < 3 * 9
    broker.record_writer.flush()
    message_ids = {webhooks.delivery_message_id(event, endpoint.id): event for event in events}

    def records() -> list[JobRecord] | None:
        broker.record_writer.flush()
        with Session(clean_db) as session:
            rows = session.scalars(
                select(JobRecord).where(JobRecord.message_id.in_([uuid.UUID(m) for m in message_ids]))
            ).all()
        return list(rows) if len(rows) == 3 and all(r.status == "done" for r in rows) else None

    for record in wait_for(records, what="the three deliveries recorded done"):
        event = message_ids[str(record.message_id)]
        # Attempts are the retries used + 1: exactly the requests that failed, never the waits.
        assert record.attempts == answered[event].count(500) + 1, (record.attempts, answered[event])
    assert read_state(client, f"webhook:{endpoint.id}").state == "closed"


def test_an_endpoint_failing_too_long_is_disabled_and_its_owner_told(
    env: CommonSettings, clean_db: Engine, receiver: Receiver, make_user: Callable[..., int]
) -> None:
    sessions = make_session_factory(clean_db)
    owner = make_user()
    endpoint = register_endpoint(sessions, owner, receiver.url, ["post.created"], allow_loopback=True)
    with clean_db.begin() as connection:
        connection.execute(text("UPDATE webhook_endpoints SET failing_since = now() - interval '6 days'"))
    client: redis.Redis[bytes] = redis.Redis.from_url(env.redis_url)

    outcome = webhooks.deliver_webhook(
        sessions, client, _delivery(endpoint.id), policy=_policy(disable_after=dt.timedelta(days=5))
    )

    assert outcome == "dropped"
    assert receiver.requests == []
    with Session(clean_db) as session:
        row = session.get(WebhookEndpoint, endpoint.id)
        assert row is not None and (row.enabled, row.disabled_reason) == (
            False,
            "failing for longer than the allowed period",
        )
        [event] = session.scalars(select(OutboxEvent)).all()
        assert event.event_name == "notification.requested"
        assert (event.payload["user_id"], event.payload["template"]) == (owner, "webhook_disabled")


def test_demo_registers_a_device_and_an_endpoint_on_the_local_receiver(
    env: CommonSettings, clean_db: Engine, make_user: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightshift.common.service import installed_services, load_object

    user = make_user()
    monkeypatch.setenv("LOCAL_RECEIVER_URL", "http://127.0.0.1:9")
    spec = installed_services()["notifications"]
    assert dict(spec.local_env) == {"NOTIFICATIONS_WEBHOOKS_ALLOW_LOOPBACK": "true"}
    tick: Any = load_object(spec.demo or "")

    device = tick(make_session_factory(clean_db))

    with Session(clean_db) as session:
        [endpoint] = session.scalars(select(WebhookEndpoint)).all()
        assert (endpoint.url, endpoint.owner_user_id) == ("http://127.0.0.1:9/webhooks/demo", user)
        stored = session.get(PushDevice, device)
        assert stored is not None and (stored.platform, stored.user_id) == ("webpush", user)
        [event] = session.scalars(select(OutboxEvent)).all()
        assert (event.payload["channel"], event.payload["user_id"]) == ("push", user)
