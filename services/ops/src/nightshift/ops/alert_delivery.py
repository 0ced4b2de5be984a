"""Delivering an alert notice: an email through notifications and a signed webhook, each once.

The email is the notifications service's ``send_ops_alert`` (by contract, to
``NOTIFICATIONS_OPERATORS_ADDRESS``), whose idempotency key is the notice's, so a
redelivered notice is never mailed twice. The webhook is a JSON ``POST`` to
``OPS_ALERT_WEBHOOK_URL`` signed with HMAC-SHA256:

- ``X-Nightshift-Timestamp``: seconds since the epoch when it was signed;
- ``X-Nightshift-Signature``: ``sha256=`` + hex HMAC of ``<timestamp>.<body>`` with
  ``OPS_ALERT_WEBHOOK_SECRET`` (a receiver recomputes it, compares in constant time and
  refuses old timestamps);
- ``X-Nightshift-Delivery``: the notice id (the same on a retry: receivers dedupe on it).

Both carry the evidence (the alert's facts) and the link to its dashboard page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

import dramatiq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import SEND_OPS_ALERT, OpsAlert
from nightshift.common.db.engine import transaction
from nightshift.common.errors import PermanentError, TransientError
from nightshift.ops.models import Alert, AlertNotice
from nightshift.ops.settings import OpsSettings

#: Seconds a webhook receiver gets to answer.
WEBHOOK_TIMEOUT_S = 10


class WebhookFailed(TransientError):
    """The webhook receiver could not be reached or did not answer 2xx (retried)."""


class UnknownNotice(PermanentError):
    """The notice to deliver does not exist (deleted by the retention purge)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Nightshift-Signature`` of *body* sent at *timestamp*."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300) -> bool:
    """Whether *signature* is *body*'s at *timestamp*, signed at most *max_age_s* ago (what a receiver does)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


def alert_link(options: OpsSettings, alert_id: int) -> str:
    """The alert's page on the dashboard."""
    return f"{options.public_url.rstrip('/')}/alerts/{alert_id}"


def deliver_notice(
    sessions: sessionmaker[Session], broker: dramatiq.Broker, options: OpsSettings, notice_id: int
) -> dict[str, bool]:
    """Send notice *notice_id* by email and webhook, each unless already sent; say what was sent now.

    Raises:
      UnknownNotice: No such notice.
      WebhookFailed: The webhook failed (the email, if sent, is recorded first).
    """
    with transaction(sessions) as session:
        row = session.execute(
            select(AlertNotice, Alert).join(Alert, Alert.id == AlertNotice.alert_id).where(AlertNotice.id == notice_id)
        ).first()
        if row is None:
            raise UnknownNotice(f"no alert notice {notice_id}")
        notice, alert = row
        document = notice_document(options, notice, alert)
        email_due = notice.email_sent_at is None
        webhook_due = bool(options.alert_webhook_url) and notice.webhook_sent_at is None
    sent = {"email": False, "webhook": False}
    if email_due:
        SEND_OPS_ALERT.send(email_of(document), broker=broker)
        _mark(sessions, notice_id, "email_sent_at")
        sent["email"] = True
    if webhook_due:
        post_webhook(options, notice_id, document)
        _mark(sessions, notice_id, "webhook_sent_at")
        sent["webhook"] = True
    return sent


def notice_document(options: OpsSettings, notice: AlertNotice, alert: Alert) -> dict[str, Any]:
    """The webhook's JSON body: the notice, the alert with its evidence, the dashboard link."""
    return {
        "notice_id": notice.id,
        "status": "firing" if notice.kind == "fired" else "resolved",
        "alert": {
            "id": alert.id,
            "key": alert.key,
            "rule": alert.rule,
            "source": alert.source,
            "severity": alert.severity,
            "summary": alert.summary,
            "facts": alert.facts,
            "fired_at": alert.fired_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
        "dashboard_url": alert_link(options, alert.id),
    }


def email_of(document: dict[str, Any]) -> OpsAlert:
    """The notifications payload of a notice: subject line, evidence and link as facts."""
    alert = document["alert"]
    resolved = document["status"] == "resolved"
    facts: dict[str, float | int | str] = {
        name: value if isinstance(value, int | float | str) else json.dumps(value)
        for name, value in alert["facts"].items()
    }
    facts |= {"status": document["status"], "fired_at": alert["fired_at"], "dashboard": document["dashboard_url"]}
    if resolved:
        facts["resolved_at"] = alert["resolved_at"]
    summary = ("Resolved: " if resolved else "") + alert["summary"]
    return OpsAlert(
        alert_key=f"ops:{document['notice_id']}",
        source=alert["source"],
        kind=alert["rule"],
        severity="info" if resolved else alert["severity"],
        summary=summary[:300],
        facts=facts,
    )


def post_webhook(options: OpsSettings, notice_id: int, document: dict[str, Any]) -> None:
    """POST *document* to the webhook, signed.

    Raises:
      WebhookFailed: Unreachable, or an answer other than 2xx.
    """
    if not options.alert_webhook_url or not options.alert_webhook_secret:
        raise WebhookFailed("OPS_ALERT_WEBHOOK_URL and OPS_ALERT_WEBHOOK_SECRET are not both set")
    body = json.dumps(document, sort_keys=True).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 - the operators' own URL
        options.alert_webhook_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Nightshift-Timestamp": str(timestamp),
            "X-Nightshift-Signature": sign(options.alert_webhook_secret, timestamp, body),
            "X-Nightshift-Delivery": str(notice_id),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        raise WebhookFailed(f"alert webhook answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise WebhookFailed(f"alert webhook unreachable: {error}") from None
    if not 200 <= status < 300:
        raise WebhookFailed(f"alert webhook answered {status}")


def _mark(sessions: sessionmaker[Session], notice_id: int, column: str) -> None:
    with transaction(sessions) as session:
        notice = session.get(AlertNotice, notice_id)
        if notice is not None:
            setattr(notice, column, dt.datetime.now(dt.UTC))
