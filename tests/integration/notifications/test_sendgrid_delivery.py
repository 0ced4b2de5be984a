"""The SendGrid backend through the official client, pointed at a local recording server."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from nightshift.common.contracts.notifications import SEND_EMAIL
from nightshift.common.db.models import JobRecord
from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.notifications.errors import ProviderOutcomeUnknown, ProviderUnavailable
from nightshift.notifications.mailers import Address, Email, SendGridMailer
from nightshift.notifications.models import EmailDelivery
from tests.conftest import TEST_RETRY_DELAYS_MS
from tests.support.sendgrid_stub import SendGridStub

pytestmark = pytest.mark.integration

API_KEY = "SG.test-key"
SENDER = Address("hello@nightshift.test", "Nightshift")


@pytest.fixture
def sendgrid_mail(configure_mail: Callable[..., None], sendgrid_stub: SendGridStub, run_worker: Any) -> SendGridStub:
    """A worker on the high lane sending through the SendGrid stub."""
    import nightshift.notifications.actors  # noqa: F401 - declares the actors on the broker

    configure_mail(
        MAIL_BACKEND="sendgrid",
        NOTIFICATIONS_SENDGRID_API_KEY=API_KEY,
        NOTIFICATIONS_SENDGRID_HOST=sendgrid_stub.url,
        NOTIFICATIONS_FROM_NAME="Nightshift",
    )
    run_worker({SEND_EMAIL.queue_name})
    return sendgrid_stub


def _wait_until_dead(broker: NightshiftRedisBroker, engine: Engine, message_id: str) -> JobRecord:
    def dead_record() -> JobRecord | None:
        broker.record_writer.flush()
        with Session(engine) as session:
            record = session.get(JobRecord, message_id)
        return record if record is not None and record.status == "dead" else None

    return wait_for(dead_record, what="the message dead-lettered")


def _publish_welcome(user_id: int) -> str:
    [message] = publish(
        "notification.requested", {"user_id": user_id, "template": "welcome", "idempotency_key": f"welcome:{user_id}"}
    )
    return message.message_id


def test_sendgrid_receives_the_mail_send_request(
    broker: NightshiftRedisBroker, clean_db: Engine, make_user: Callable[..., int], sendgrid_mail: SendGridStub
) -> None:
    user_id = make_user(email="margaret@example.org", display_name="Margaret Hamilton", locale="fr")

    message_id = _publish_welcome(user_id)

    def delivered() -> list[EmailDelivery]:
        with Session(clean_db) as session:
            return list(session.scalars(select(EmailDelivery)).all())

    [row] = wait_for(delivered, what="the delivery row")
    [request] = sendgrid_mail.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    body = request.body
    assert body["personalizations"] == [{"to": [{"email": "margaret@example.org", "name": "Margaret Hamilton"}]}]
    assert body["from"] == {"email": "hello@nightshift.test", "name": "Nightshift"}
    assert body["subject"] == "Bienvenue sur Nightshift, Margaret Hamilton !"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"].startswith("Bonjour Margaret Hamilton,")
    assert body["custom_args"] == {"idempotency_key": f"welcome:{user_id}"}
    assert (row.backend, row.locale, row.provider_message_id, row.message_id) == (
        "sendgrid",
        "fr",
        "sg-1",
        message_id,
    )


def test_same_key_sent_concurrently_reaches_sendgrid_once(
    broker: NightshiftRedisBroker, clean_db: Engine, make_user: Callable[..., int], sendgrid_mail: SendGridStub
) -> None:
    sendgrid_mail.latency_s = 0.3  # the second message arrives while the first is being sent
    user_id = make_user()

    message_ids = [_publish_welcome(user_id), _publish_welcome(user_id)]

    def both_done() -> bool:
        broker.record_writer.flush()
        with Session(clean_db) as session:
            statuses = session.scalars(select(JobRecord.status).where(JobRecord.message_id.in_(message_ids)))
            return sorted(statuses) == ["done", "done"]

    wait_for(both_done, what="both messages done")
    assert len(sendgrid_mail.requests) == 1
    with Session(clean_db) as session:
        assert session.scalar(select(func.count()).select_from(EmailDelivery)) == 1


def test_unavailable_sendgrid_is_retried_on_the_schedule_then_dead_lettered(
    broker: NightshiftRedisBroker, clean_db: Engine, make_user: Callable[..., int], sendgrid_mail: SendGridStub
) -> None:
    sendgrid_mail.status = 503
    sendgrid_mail.response_body = b'{"errors":[{"message":"try later for ada@example.org"}]}'
    user_id = make_user(email="ada@example.org")

    message_id = _publish_welcome(user_id)

    record = _wait_until_dead(broker, clean_db, message_id)
    assert record.attempts == len(TEST_RETRY_DELAYS_MS) + 1 == 4
    times = [request.at for request in sendgrid_mail.requests]
    assert len(times) == 4
    gaps_ms = [(later - earlier) * 1000 for earlier, later in itertools.pairwise(times)]
    # Each wait at least its delay; no upper bound (pickup of delayed messages has its own latency).
    assert all(gap >= delay for gap, delay in zip(gaps_ms, TEST_RETRY_DELAYS_MS, strict=True)), gaps_ms
    [letter] = list_dead_letters(broker, "notifications_high")
    assert letter.message is not None and letter.message.message_id == message_id
    assert (letter.error_type, letter.reason) == ("ProviderUnavailable", "SendGrid answered 503 Service Unavailable")
    assert record.last_error == "ProviderUnavailable: SendGrid answered 503 Service Unavailable"
    assert "ada@example.org" not in letter.message.options["traceback"]
    with Session(clean_db) as session:
        assert session.scalars(select(EmailDelivery)).all() == []


def test_sendgrid_refusal_is_dead_lettered_after_one_attempt(
    broker: NightshiftRedisBroker, clean_db: Engine, make_user: Callable[..., int], sendgrid_mail: SendGridStub
) -> None:
    sendgrid_mail.status = 400
    sendgrid_mail.response_body = (
        b'{"errors":[{"message":"Invalid address ada@example.org","field":"personalizations.0.to.0.email"}]}'
    )
    user_id = make_user()

    message_id = _publish_welcome(user_id)

    record = _wait_until_dead(broker, clean_db, message_id)
    assert record.attempts == 1
    assert len(sendgrid_mail.requests) == 1
    [letter] = list_dead_letters(broker, "notifications_high")
    assert letter.error_type == "ProviderRejected"
    assert letter.reason == "SendGrid answered 400 Bad Request (fields: personalizations.0.to.0.email)"
    assert "ada@example.org" not in letter.reason
    assert letter.message is not None
    assert "ada@example.org" not in letter.message.options.get("traceback", "")


def test_unreachable_or_slow_sendgrid_is_transient(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.latency_s = 1.0
    slow = SendGridMailer(API_KEY, sender=SENDER, host=sendgrid_stub.url, timeout_s=0.2)
    email = Email(Address("ada@example.org", "Ada"), "Hi", "text", "<p>html</p>", "welcome:timeout")

    # The request reached SendGrid: a timeout waiting for the answer leaves its fate unknown (still retried).
    with pytest.raises(ProviderOutcomeUnknown, match=r"^SendGrid did not answer: TimeoutError$"):
        slow.send(email)
    assert issubclass(ProviderOutcomeUnknown, ProviderUnavailable)

    with socket.socket() as bound_not_listening:  # connections to it are refused
        bound_not_listening.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound_not_listening.getsockname()[1]}"
        refused = SendGridMailer(API_KEY, sender=SENDER, host=url)

        with pytest.raises(ProviderUnavailable, match=r"^SendGrid unreachable: ConnectionRefusedError$"):
            refused.send(email)
