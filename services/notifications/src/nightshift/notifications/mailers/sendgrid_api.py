"""Sending through SendGrid's v3 Mail Send API with the official client."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Content, CustomArg, From, Mail, To

from nightshift.common.errors import NightshiftError
from nightshift.notifications.errors import ProviderRejected, ProviderUnavailable
from nightshift.notifications.mailers.base import Address, Email, Mailer
from nightshift.notifications.mailers.mime import one_line

#: 4xx answers worth retrying (request timeout, rate limited); every 5xx is retried too.
_RETRYABLE_STATUSES = frozenset({408, 429})


class SendGridMailer(Mailer):
    """One API call per email; SendGrid's ``X-Message-Id`` is the provider id.

    Parameters:
      api_key: The SendGrid API key.
      sender: The ``From`` of every email (a verified sender at SendGrid).
      host: The API's base URL (a local server in tests).
      timeout_s: Seconds allowed for one call.
    """

    backend = "sendgrid"

    def __init__(self, api_key: str, *, sender: Address, host: str, timeout_s: float = 10.0) -> None:
        super().__init__(sender=sender)
        self.client = SendGridAPIClient(api_key, host=host)
        # The client builds a child client per URL segment, each inheriting this timeout.
        self.client.client.timeout = timeout_s

    def send(self, email: Email) -> str | None:
        """Send *email*; return SendGrid's message id.

        Raises:
          ProviderUnavailable: No connection, a timeout, 429 or 5xx.
          ProviderRejected: Any other 4xx (bad request, bad key, forbidden sender…).
        """
        try:
            response = self.client.send(self._mail(email))
        except HTTPError as error:
            raise classify_sendgrid_error(error) from None
        except (OSError, http.client.HTTPException) as error:
            # urllib wraps connection failures: name the underlying one (refused, timed out…).
            cause = error.reason if isinstance(error, URLError) and isinstance(error.reason, BaseException) else error
            raise ProviderUnavailable(f"SendGrid unreachable: {type(cause).__name__}") from None
        message_id: str | None = response.headers.get("X-Message-Id")
        return message_id

    def _mail(self, email: Email) -> Mail:
        mail = Mail(
            from_email=From(self.sender.email, one_line(self.sender.name) or None),
            to_emails=To(email.recipient.email, one_line(email.recipient.name) or None),
            subject=one_line(email.subject),
        )
        mail.add_content(Content("text/plain", email.text))
        mail.add_content(Content("text/html", email.html))
        # Returned by SendGrid's event webhook: ties a provider event back to our delivery row.
        mail.add_custom_arg(CustomArg("idempotency_key", email.idempotency_key))
        return mail


def classify_sendgrid_error(error: HTTPError) -> NightshiftError:
    """The retryable or permanent error for SendGrid's HTTP *error*.

    Only the status, its reason phrase and the names of the fields SendGrid
    complains about are kept; its messages may quote addresses.
    """
    status = int(error.status_code)
    description = f"SendGrid answered {status} {error.reason}"
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return ProviderUnavailable(description)
    fields = _error_fields(error.body)
    return ProviderRejected(description + (f" (fields: {', '.join(fields)})" if fields else ""))


def _error_fields(body: Any) -> list[str]:
    try:
        errors = json.loads(body)["errors"]
        return sorted({str(item["field"]) for item in errors if item.get("field")})
    except (ValueError, KeyError, TypeError):
        return []
