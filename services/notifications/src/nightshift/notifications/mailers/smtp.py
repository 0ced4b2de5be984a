"""Sending through an SMTP server with :mod:`smtplib`."""

from __future__ import annotations

import smtplib
import ssl

from nightshift.common.errors import NightshiftError
from nightshift.notifications.errors import ProviderRejected, ProviderUnavailable
from nightshift.notifications.mailers.base import Address, Email, Mailer
from nightshift.notifications.mailers.mime import build_mime


class SmtpMailer(Mailer):
    """One SMTP connection per email, upgraded with STARTTLS and authenticated when configured.

    Parameters:
      host, port: The SMTP server.
      sender: The ``From`` of every email.
      user, password: Credentials, when the server wants them.
      starttls: Upgrade the connection to TLS before authenticating.
      timeout_s: Seconds allowed for connecting and for each command.
    """

    backend = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: Address,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(sender=sender)
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.starttls = starttls
        self.timeout_s = timeout_s

    def send(self, email: Email) -> str:
        """Send *email*; return its ``Message-ID``.

        Raises:
          ProviderUnavailable: No connection, a timeout, or a 4xx reply.
          ProviderRejected: A 5xx reply (refused recipient, failed authentication…).
        """
        message = build_mime(email, self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.user:
                    client.login(self.user, self.password or "")
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise classify_smtp_error(error) from None
        return str(message["Message-ID"])


def classify_smtp_error(error: smtplib.SMTPException | OSError) -> NightshiftError:
    """The retryable or permanent error for *error*, described without its text.

    SMTP replies often echo the address (``550 <ada@…>: unknown user``), so only
    the reply code and the exception type are kept.
    """
    code: int | None = None
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [reply[0] for reply in error.recipients.values()]
        code = max(codes) if codes else None
    elif isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
    description = f"SMTP {type(error).__name__}" + (f" (reply {code})" if code is not None else "")
    if code is not None and 500 <= code < 600:
        return ProviderRejected(description)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return ProviderRejected(f"{description}: the server lacks a required extension")
    return ProviderUnavailable(description)
