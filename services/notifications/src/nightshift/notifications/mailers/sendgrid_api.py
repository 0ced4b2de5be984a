"""Sending through SendGrid's v3 Mail Send API with the official client."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Sequence
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    Content,
    ContentId,
    CustomArg,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Header,
    Mail,
    To,
)

from nightshift.common.errors import NightshiftError
from nightshift.notifications.errors import ProviderOutcomeUnknown, ProviderRejected, ProviderUnavailable
from nightshift.notifications.mailers.base import Address, Email, Mailer
from nightshift.notifications.mailers.mime import one_line

#: SendGrid's limit of personalizations (recipients) per Mail Send request.
MAX_PERSONALIZATIONS = 1000
#: Substitution tags standing for each recipient's own text and HTML in a bulk request.
TEXT_TAG = "-nightshift_text-"
HTML_TAG = "-nightshift_html-"

#: 4xx answers worth retrying (request timeout, rate limited); every 5xx is retried too.
_RETRYABLE_STATUSES = frozenset({408, 429})


class SendGridMailer(Mailer):
    """One API call per email; SendGrid's ``X-Message-Id`` is the provider id.

    Parameters:
      api_key: The SendGrid API key.
      sender: The ``From`` of every email (a verified sender at SendGrid).
      host: The API's base URL (a local server in tests).
      timeout_s: Seconds allowed for one call.
      batch_size: Personalizations per bulk request (at most 1,000).
    """

    backend = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        sender: Address,
        host: str,
        timeout_s: float = 10.0,
        batch_size: int = MAX_PERSONALIZATIONS,
    ) -> None:
        super().__init__(sender=sender)
        if not 1 <= batch_size <= MAX_PERSONALIZATIONS:
            raise ValueError(f"batch_size must be between 1 and {MAX_PERSONALIZATIONS}, not {batch_size}")
        self.batch_size = batch_size
        self.client = SendGridAPIClient(api_key, host=host)
        # The client builds a child client per URL segment, each inheriting this timeout.
        self.client.client.timeout = timeout_s

    def send(self, email: Email) -> str | None:
        """Send *email*; return SendGrid's message id.

        Raises:
          ProviderOutcomeUnknown: The request was sent but no answer came back (timeout, connection lost).
          ProviderUnavailable: No connection, 429 or 5xx: not accepted.
          ProviderRejected: Any other 4xx (bad request, bad key, forbidden sender…).
        """
        return self._post(self._mail(email).get())

    def send_bulk(self, emails: Sequence[Email]) -> list[str | None]:
        """Send up to 1,000 emails in one request, one personalization per recipient.

        Each personalization carries the recipient's subject, headers
        (``List-Unsubscribe``…), idempotency key and, as substitutions, their own
        text and HTML; the request's content is the two substitution tags.

        Returns:
          SendGrid's ``X-Message-Id`` of the request, for every email.

        Raises:
          ValueError: More than 1,000 emails, or one with inline images.
          ProviderUnavailable, ProviderRejected: As :meth:`send`.
        """
        if not emails:
            return []
        if len(emails) > MAX_PERSONALIZATIONS:
            raise ValueError(f"SendGrid takes at most {MAX_PERSONALIZATIONS} personalizations per request")
        if any(email.images for email in emails):
            raise ValueError("a bulk request carries no inline images: send emails with images one by one")
        body: dict[str, Any] = {
            "from": _address(self.sender),
            "subject": one_line(emails[0].subject),
            "content": [{"type": "text/plain", "value": TEXT_TAG}, {"type": "text/html", "value": HTML_TAG}],
            "personalizations": [_personalization(email) for email in emails],
        }
        message_id = self._post(body)
        return [message_id] * len(emails)

    def _post(self, body: dict[str, Any]) -> str | None:
        try:
            response = self.client.client.mail.send.post(request_body=body)
        except HTTPError as error:
            raise classify_sendgrid_error(error) from None
        except URLError as error:
            # urllib wraps what fails while connecting and writing the request: it was not received whole.
            cause = error.reason if isinstance(error.reason, BaseException) else error
            raise ProviderUnavailable(f"SendGrid unreachable: {type(cause).__name__}") from None
        except (OSError, http.client.HTTPException) as error:
            # Raised unwrapped while waiting for the answer: the request was sent, its fate is unknown.
            raise ProviderOutcomeUnknown(f"SendGrid did not answer: {type(error).__name__}") from None
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
        for name, value in email.custom_args:
            mail.add_custom_arg(CustomArg(name, value))
        for name, value in email.headers:
            mail.add_header(Header(name, one_line(value)))
        for image in email.images:  # shown where the HTML says cid:<content id>
            mail.add_attachment(
                Attachment(
                    FileContent(base64.b64encode(image.data).decode()),
                    FileName(image.file_name),
                    FileType(image.content_type),
                    Disposition("inline"),
                    ContentId(image.content_id),
                )
            )
        return mail


def _address(address: Address) -> dict[str, str]:
    name = one_line(address.name)
    return {"email": address.email, "name": name} if name else {"email": address.email}


def _personalization(email: Email) -> dict[str, Any]:
    personalization: dict[str, Any] = {
        "to": [_address(email.recipient)],
        "subject": one_line(email.subject),
        "substitutions": {TEXT_TAG: email.text, HTML_TAG: email.html},
        "custom_args": {"idempotency_key": email.idempotency_key, **dict(email.custom_args)},
    }
    if email.headers:
        personalization["headers"] = {name: one_line(value) for name, value in email.headers}
    return personalization


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
