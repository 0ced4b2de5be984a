"""The SMTP backend against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import SEND_EMAIL_CRITICAL, EmailRequest
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.notifications.delivery import send_email
from nightshift.notifications.errors import ProviderRejected, ProviderUnavailable
from nightshift.notifications.mailers import Address, SmtpMailer
from nightshift.notifications.models import EmailDelivery
from tests.integration.notifications.conftest import SmtpInbox

pytestmark = pytest.mark.integration

SENDER = Address("hello@nightshift.test", "Nightshift")


def test_critical_email_reaches_the_smtp_server(
    broker: NightshiftRedisBroker,
    run_worker: Any,
    clean_db: Engine,
    configure_mail: Callable[..., None],
    make_user: Callable[..., int],
    smtp_inbox: SmtpInbox,
) -> None:
    import nightshift.notifications.actors  # noqa: F401 - declares the actors on the broker

    configure_mail(
        MAIL_BACKEND="smtp", NOTIFICATIONS_SMTP_HOST="127.0.0.1", NOTIFICATIONS_SMTP_PORT=str(smtp_inbox.port)
    )
    user_id = make_user(email="grace@example.org", display_name="Grace Hopper", locale="en-US")
    run_worker({SEND_EMAIL_CRITICAL.queue_name})

    sent = publish(
        "notification.requested",
        {"user_id": user_id, "template": "welcome", "idempotency_key": "security:1", "urgency": "critical"},
    )

    assert [m.queue_name for m in sent] == ["notifications_critical"]
    wait_for(lambda: smtp_inbox.envelopes, what="the SMTP server to receive the email")
    [envelope] = smtp_inbox.envelopes
    assert envelope.mail_from == "hello@nightshift.test"
    assert envelope.rcpt_tos == ["grace@example.org"]
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"] == "Welcome to Nightshift, Grace Hopper!"
    assert message["To"] == "Grace Hopper <grace@example.org>"
    text = message.get_body(("plain",))
    assert text is not None
    assert text.get_content().startswith("Hello Grace Hopper,")

    def delivered() -> list[EmailDelivery]:
        with Session(clean_db) as session:
            return list(session.scalars(select(EmailDelivery)).all())

    [row] = wait_for(delivered, what="the delivery row")
    assert (row.backend, row.locale, row.message_id) == ("smtp", "en", sent[0].message_id)
    assert row.provider_message_id == message["Message-ID"]


def test_refused_recipient_is_permanent_and_keeps_the_address_out(
    clean_db: Engine, make_user: Callable[..., int], smtp_inbox: SmtpInbox
) -> None:
    smtp_inbox.refuse_recipients_with = "550 5.1.1 <{address}>: Recipient address rejected"
    user_id = make_user(email="linus@example.org", display_name="Linus")
    mailer = SmtpMailer("127.0.0.1", smtp_inbox.port, sender=SENDER)
    request = EmailRequest(user_id=user_id, template="welcome", idempotency_key="welcome:refused")

    with pytest.raises(ProviderRejected) as caught:
        send_email(sessionmaker(clean_db), mailer, request)

    assert str(caught.value) == "SMTP SMTPRecipientsRefused (reply 550)"
    assert caught.value.__suppress_context__
    with Session(clean_db) as session:
        assert session.scalars(select(EmailDelivery)).all() == []


def test_unreachable_server_is_transient(clean_db: Engine, make_user: Callable[..., int]) -> None:
    user_id = make_user()
    request = EmailRequest(user_id=user_id, template="welcome", idempotency_key="welcome:unreachable")
    with socket.socket() as bound_not_listening:  # connections to it are refused
        bound_not_listening.bind(("127.0.0.1", 0))
        mailer = SmtpMailer("127.0.0.1", bound_not_listening.getsockname()[1], sender=SENDER)

        with pytest.raises(ProviderUnavailable, match=r"^SMTP ConnectionRefusedError$"):
            send_email(sessionmaker(clean_db), mailer, request)

    with Session(clean_db) as session:
        assert session.scalars(select(EmailDelivery)).all() == []
