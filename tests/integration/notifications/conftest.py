"""Local stand-ins for the mail providers (a real SMTP server, an HTTP server for SendGrid) and users."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from sqlalchemy.orm import Session as DbSession

from nightshift.common import runtime
from nightshift.common.db.models import User
from nightshift.common.processes import free_port
from nightshift.common.settings import CommonSettings
from tests.support.sendgrid_stub import SendGridStub, sendgrid_stub_server

#: Signs SendGrid's event webhook requests in tests; its public key is the service's setting.
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(
    SIGNING_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def signed_headers(body: bytes, timestamp: str) -> dict[str, str]:
    """The headers of SendGrid's Signed Event Webhook for *body* sent at *timestamp*."""
    signature = SIGNING_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def post_events(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST *body* to *url*; the answer's status."""
    try:
        return int(urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers)).status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture
def sendgrid_stub() -> Iterator[SendGridStub]:
    with sendgrid_stub_server() as stub:
        yield stub


@dataclass
class SmtpInbox:
    """What a local SMTP server received."""

    port: int
    envelopes: list[Envelope] = field(default_factory=list)
    #: When set, RCPT TO is answered with this reply instead of 250.
    refuse_recipients_with: str | None = None


@pytest.fixture
def smtp_inbox() -> Iterator[SmtpInbox]:
    port = free_port()
    inbox = SmtpInbox(port=port)

    class Handler:
        async def handle_RCPT(
            self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
        ) -> str:
            if inbox.refuse_recipients_with:
                return inbox.refuse_recipients_with.replace("{address}", address)
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            inbox.envelopes.append(envelope)
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def configure_mail(env: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ``MAIL_BACKEND`` and ``NOTIFICATIONS_*`` variables and make the actors reload them."""
    import nightshift.notifications.actors  # noqa: F401 - declares the actors

    def configure(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        runtime.reset()

    configure(MAIL_BACKEND="outbox", NOTIFICATIONS_FROM_ADDRESS="hello@nightshift.test")
    yield configure
    runtime.reset()


@pytest.fixture
def make_user(clean_db: Engine) -> Callable[..., int]:
    def make(email: str = "ada@example.org", display_name: str = "Ada Lovelace", locale: str = "en") -> int:
        with DbSession(clean_db) as session, session.begin():
            user = User(email=email, display_name=display_name, locale=locale)
            session.add(user)
            session.flush()
            return user.id

    return make
