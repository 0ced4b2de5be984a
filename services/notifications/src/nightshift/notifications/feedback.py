"""Provider feedback: SendGrid's signed event webhook suppresses addresses that must not be mailed again.

SendGrid signs each POST of its event webhook with ECDSA (P-256, SHA-256) over
the ``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body;
the signature is in ``X-Twilio-Email-Event-Webhook-Signature``. The request is
verified with the account's public key (the official client's ``EventWebhook``)
and refused when older than ``NOTIFICATIONS_SENDGRID_WEBHOOK_MAX_AGE_S`` (a
replay). A ``bounce``, ``dropped``, ``spamreport``, ``unsubscribe`` or
``group_unsubscribe`` event suppresses its address. Any event carrying a bulk
email's custom arguments also confirms that recipient as sent
(:func:`nightshift.notifications.bulk_reconcile.confirm_from_events`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import EmailSuppression
from nightshift.common.errors import PermanentError

#: SendGrid's signature and timestamp headers.
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
#: Event types that suppress the address, and the reason recorded.
SUPPRESSING_EVENTS = {
    "bounce": "bounce",
    "dropped": "dropped",
    "spamreport": "spam_report",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}


class InvalidSignature(PermanentError):
    """A provider webhook request whose signature does not verify, or that is too old."""


class SendGridEvents:
    """Verifies SendGrid event webhook requests.

    Parameters:
      public_key: The verification key SendGrid shows (base64 DER).
      max_age_s: Requests signed longer ago than this are refused.
    """

    def __init__(self, public_key: str, *, max_age_s: int = 600) -> None:
        self.webhook = EventWebhook(public_key)
        self.max_age_s = max_age_s

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> list[dict[str, Any]]:
        """The events of a verified request.

        Raises:
          InvalidSignature: Missing headers, an old timestamp, a signature that does not verify,
            or a body that is not a JSON list.
        """
        if not signature or not timestamp or not timestamp.isdigit():
            raise InvalidSignature("missing SendGrid signature or timestamp")
        if abs(time.time() - int(timestamp)) > self.max_age_s:
            raise InvalidSignature("SendGrid event webhook request too old")
        try:
            valid = self.webhook.verify_signature(body.decode(), signature, timestamp)
        except (ValueError, TypeError, UnicodeDecodeError):
            valid = False
        if not valid:
            raise InvalidSignature("SendGrid event webhook signature does not verify")
        events = json.loads(body)
        if not isinstance(events, list):
            raise InvalidSignature("SendGrid event webhook body is not a list")
        return [event for event in events if isinstance(event, dict)]


def apply_events(sessions: sessionmaker[Session], events: list[dict[str, Any]]) -> int:
    """Suppress the addresses of the suppressing events; return how many events suppressed one."""
    rows = {}
    for event in events:
        reason = SUPPRESSING_EVENTS.get(str(event.get("event", "")))
        email = str(event.get("email", "")).strip().lower()
        if reason and "@" in email:
            rows[email] = {"email": email, "reason": reason, "source": "sendgrid"}
    if rows:
        with transaction(sessions) as session:
            session.execute(insert(EmailSuppression).on_conflict_do_nothing(), list(rows.values()))
    return len(rows)
