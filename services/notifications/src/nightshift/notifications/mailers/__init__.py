"""Mail behind one small interface, and the factory that picks the configured backend."""

from __future__ import annotations

from pathlib import Path

from nightshift.common import runtime
from nightshift.common.errors import ConfigurationError
from nightshift.notifications.mailers.base import Address, Email, EmbeddedImage, Mailer
from nightshift.notifications.mailers.outbox import OutboxMailer
from nightshift.notifications.mailers.sendgrid_api import SendGridMailer
from nightshift.notifications.mailers.smtp import SmtpMailer
from nightshift.notifications.settings import NotificationsSettings

__all__ = [
    "Address",
    "Email",
    "EmbeddedImage",
    "Mailer",
    "OutboxMailer",
    "SendGridMailer",
    "SmtpMailer",
    "build_mailer",
    "configured_mailer",
]


def build_mailer(settings: NotificationsSettings, *, outbox_dir: str | Path) -> Mailer:
    """The mailer ``MAIL_BACKEND`` names, configured from *settings*.

    Parameters:
      outbox_dir: The folder of the outbox backend (the common ``OUTBOX_DIR``).

    Raises:
      ConfigurationError: A setting the backend needs is missing.
    """
    sender = Address(settings.from_address, settings.from_name)
    if settings.mail_backend == "sendgrid":
        if settings.sendgrid_api_key is None:
            raise ConfigurationError("NOTIFICATIONS_SENDGRID_API_KEY is required when MAIL_BACKEND is sendgrid")
        return SendGridMailer(
            settings.sendgrid_api_key.get_secret_value(),
            sender=sender,
            host=settings.sendgrid_host,
            timeout_s=settings.sendgrid_timeout_s,
            batch_size=settings.sendgrid_batch_size,
        )
    if settings.mail_backend == "smtp":
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            sender=sender,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout_s=settings.smtp_timeout_s,
        )
    return OutboxMailer(outbox_dir, sender=sender)


def configured_mailer() -> Mailer:
    """The mailer of this process's settings; built once through ``runtime.resource(configured_mailer)``.

    Its clients are thread-safe, so every worker thread shares it. A remote provider's
    requests go through its circuit breaker and rate limits (``guards``).

    Raises:
      ConfigurationError: A setting the backend needs is missing.
    """
    from nightshift.notifications.guards import mail_guard_for

    settings = runtime.service_settings(NotificationsSettings)
    return mail_guard_for(build_mailer(settings, outbox_dir=runtime.settings().outbox_dir), settings)
