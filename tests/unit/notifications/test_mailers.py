"""Backends without a network: the outbox folder, error classification, settings."""

from __future__ import annotations

import io
import os
import smtplib
import subprocess
import sys
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError
from python_http_client.exceptions import HTTPError

from nightshift.common.contracts.notifications import OperatorEmail
from nightshift.common.errors import PermanentError, TransientError
from nightshift.common.settings import load_settings
from nightshift.notifications.errors import ProviderRejected, ProviderUnavailable
from nightshift.notifications.mailers import (
    Address,
    Email,
    EmbeddedImage,
    OutboxMailer,
    SendGridMailer,
    SmtpMailer,
    build_mailer,
)
from nightshift.notifications.mailers.sendgrid_api import classify_sendgrid_error
from nightshift.notifications.mailers.smtp import classify_smtp_error
from nightshift.notifications.settings import NotificationsSettings

ADDRESS = "ada@example.org"
SENDER = Address("no-reply@nightshift.test", "Nightshift")


def _email(key: str = "welcome:7", subject: str = "Hello") -> Email:
    return Email(Address(ADDRESS, "Ada Lovelace"), subject, "text part", "<p>html part</p>", key)


def _read(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_outbox_writes_one_readable_eml_per_key(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", sender=SENDER)

    name = mailer.send(_email())

    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == [name]
    assert name.startswith("welcome_7-") and name.endswith(".eml")
    message = _read(files[0])
    assert message["To"] == f"Ada Lovelace <{ADDRESS}>"
    assert message["From"] == "Nightshift <no-reply@nightshift.test>"
    assert message["Subject"] == "Hello"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


def test_outbox_writes_inline_images_as_a_related_part_of_the_html(tmp_path: Path) -> None:
    png = _png()
    email = replace(
        _email("report:3"),
        html='<p>charts</p><img src="cid:throughput-chart">',
        images=(EmbeddedImage("throughput-chart", "image/png", png),),
    )

    message = _read(tmp_path / OutboxMailer(tmp_path, sender=SENDER).send(email))

    assert message.get_content_type() == "multipart/alternative"
    text, related = message.iter_parts()
    assert (text.get_content_type(), related.get_content_type()) == ("text/plain", "multipart/related")
    assert isinstance(related, EmailMessage)
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html" and 'src="cid:throughput-chart"' in html.get_content()
    assert (image.get_content_type(), image["Content-ID"]) == ("image/png", "<throughput-chart>")
    assert image.get_content_disposition() == "inline" and image.get_content() == png


def test_operator_email_contract_refuses_an_image_the_html_never_shows() -> None:
    image = {"content_id": "p95-chart", "storage_key": "ops/reports/1/p95.png"}
    request = {"idempotency_key": "report:1", "subject": "s", "text": "t", "images": [image]}
    OperatorEmail.model_validate({**request, "html": '<img src="cid:p95-chart">'})
    with pytest.raises(ValidationError, match="never shows cid:p95-chart"):
        OperatorEmail.model_validate({**request, "html": "<p>no image</p>"})
    with pytest.raises(ValidationError, match="storage key"):
        OperatorEmail.model_validate(
            {**request, "html": '<img src="cid:p95-chart">', "images": [{**image, "storage_key": "../x.png"}]}
        )


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 64, 52)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_outbox_repeat_overwrites_instead_of_adding(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path, sender=SENDER)

    first = mailer.send(_email(subject="first"))
    second = mailer.send(_email(subject="second"))
    other = mailer.send(_email(key="welcome:8"))

    assert first == second != other
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({first, other})
    assert _read(tmp_path / first)["Subject"] == "second"


def test_outbox_same_key_keeps_the_same_message_id(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path, sender=SENDER)
    name = mailer.send(_email())
    first_id = _read(tmp_path / name)["Message-ID"]
    mailer.send(_email())

    assert _read(tmp_path / name)["Message-ID"] == first_id
    assert first_id.endswith("@nightshift.test>")


def test_outbox_unwritable_folder_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")

    with pytest.raises(ProviderUnavailable, match="outbox folder not writable") as caught:
        OutboxMailer(blocker / "outbox", sender=SENDER).send(_email())
    assert ADDRESS not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, ProviderUnavailable), (500, ProviderUnavailable), (503, ProviderUnavailable), (502, ProviderUnavailable)],
)
def test_sendgrid_rate_limits_and_server_errors_are_transient(status: int, kind: type[TransientError]) -> None:
    error = classify_sendgrid_error(HTTPError(status, "Busy", b"{}", {}))

    assert isinstance(error, kind)
    assert str(error) == f"SendGrid answered {status} Busy"


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_sendgrid_other_client_errors_are_permanent_without_personal_data(status: int) -> None:
    body = (
        b'{"errors":[{"message":"Does not contain a valid address: ada@example.org",'
        b'"field":"personalizations.0.to.0.email"}]}'
    )
    error = classify_sendgrid_error(HTTPError(status, "Refused", body, {}))

    assert isinstance(error, ProviderRejected)
    assert isinstance(error, PermanentError)
    assert str(error) == f"SendGrid answered {status} Refused (fields: personalizations.0.to.0.email)"


def test_smtp_refused_recipient_is_permanent_without_the_address() -> None:
    refused = smtplib.SMTPRecipientsRefused({ADDRESS: (550, f"5.1.1 <{ADDRESS}>: unknown user".encode())})

    error = classify_smtp_error(refused)

    assert isinstance(error, ProviderRejected)
    assert str(error) == "SMTP SMTPRecipientsRefused (reply 550)"


@pytest.mark.parametrize(
    "failure",
    [
        smtplib.SMTPResponseException(451, b"try again later"),
        smtplib.SMTPServerDisconnected("gone"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
    ],
)
def test_smtp_temporary_failures_are_transient(failure: smtplib.SMTPException | OSError) -> None:
    assert isinstance(classify_smtp_error(failure), ProviderUnavailable)


def test_factory_picks_the_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAIL_BACKEND", "outbox")
    assert isinstance(build_mailer(NotificationsSettings(), outbox_dir=tmp_path), OutboxMailer)

    monkeypatch.setenv("MAIL_BACKEND", "smtp")
    monkeypatch.setenv("NOTIFICATIONS_SMTP_HOST", "mail.test")
    smtp = build_mailer(NotificationsSettings(), outbox_dir=tmp_path)
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.host, smtp.port) == ("mail.test", 25)

    monkeypatch.setenv("MAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("NOTIFICATIONS_SENDGRID_API_KEY", "SG.test")
    monkeypatch.setenv("NOTIFICATIONS_FROM_ADDRESS", "hello@nightshift.test")
    sendgrid = build_mailer(NotificationsSettings(), outbox_dir=tmp_path)
    assert isinstance(sendgrid, SendGridMailer)
    assert sendgrid.sender == Address("hello@nightshift.test", "Nightshift")


def test_sendgrid_without_a_key_stops_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAIL_BACKEND", "sendgrid")
    monkeypatch.delenv("NOTIFICATIONS_SENDGRID_API_KEY", raising=False)

    with pytest.raises(SystemExit):
        load_settings(NotificationsSettings)
    assert "NOTIFICATIONS_SENDGRID_API_KEY: Value error, required when MAIL_BACKEND is sendgrid" in (
        capsys.readouterr().err
    )


def test_smtp_user_without_a_password_stops_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NOTIFICATIONS_SMTP_USER", "mailer")

    with pytest.raises(SystemExit):
        load_settings(NotificationsSettings)
    assert "NOTIFICATIONS_SMTP_PASSWORD: Value error, required when NOTIFICATIONS_SMTP_USER is set" in (
        capsys.readouterr().err
    )


def test_a_worker_with_bad_mail_settings_stops_at_start_naming_the_variable(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        # Well-formed but unreachable: the worker must stop before it connects to anything.
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "MAIL_BACKEND": "sendgrid",
    }
    environment.pop("NOTIFICATIONS_SENDGRID_API_KEY", None)

    stopped = subprocess.run(
        [sys.executable, "-m", "nightshift.common.cli", "worker", "notifications", "--health-port", "0"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert stopped.returncode == 2
    assert "NOTIFICATIONS_SENDGRID_API_KEY: Value error, required when MAIL_BACKEND is sendgrid" in stopped.stderr
