"""Contracts of the notifications service's actors."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from nightshift.common.contracts import Contract, NoArguments, Payload
from nightshift.common.lanes import Lane
from nightshift.common.sealing import SealedStr
from nightshift.common.storage.base import validate_key

#: A notification's category, for the user's preferences; None: transactional (always sent).
Category = Literal["digest", "product_news", "security"]
#: A campaign id: also the prefix of every recipient's idempotency key.
CAMPAIGN_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,99}$"
#: Recipients one bulk message may carry (providers take up to 1,000 per request).
MAX_BULK_RECIPIENTS = 5_000
#: Webhook retries: minutes to hours (1 min, 5 min, 30 min, 2 h, 6 h, 12 h: ~21 h in all).
WEBHOOK_RETRY_DELAYS_MS = (60_000, 300_000, 1_800_000, 7_200_000, 21_600_000, 43_200_000)


class EmailRequest(Payload):
    """Send template *template* to user *user_id*, once per *idempotency_key*."""

    user_id: int
    template: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    idempotency_key: str = Field(min_length=1, max_length=200)
    #: Ids the template may look up (a post id, an export id…); never personal data.
    context_ids: dict[str, int] = Field(default_factory=dict)
    #: Links the template may show (an export's expiring download link): URLs, never personal data.
    links: dict[str, str] = Field(default_factory=dict, max_length=5)
    urgency: Literal["high", "critical"] = "high"
    #: Honoured against the user's preferences (``security`` always goes); None: transactional.
    category: Category | None = None


class BulkRecipient(Payload):
    """One recipient of a bulk email and the ids their copy is made of (post ids of a digest…)."""

    user_id: int = Field(gt=0)
    context_ids: dict[str, list[int]] = Field(default_factory=dict)


class BulkEmailBatch(Payload):
    """Send *template* to *recipients* as part of *campaign*, once per recipient and campaign."""

    campaign: str = Field(pattern=CAMPAIGN_PATTERN)
    template: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    category: Category
    recipients: list[BulkRecipient] = Field(min_length=1, max_length=MAX_BULK_RECIPIENTS)
    #: Facts shared by every copy (trending hashtags, the week): never personal data.
    facts: dict[str, str | int | list[str]] = Field(default_factory=dict)
    #: Send again the recipients left ``uncertain`` by a crash mid-request (an operator's decision,
    #: ``nightshift notifications resend-uncertain``); otherwise they are left alone.
    resend_uncertain: bool = False


class PushRequest(Payload):
    """Push template *template* to user *user_id*'s devices, once per device and *idempotency_key*."""

    user_id: int = Field(gt=0)
    template: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    idempotency_key: str = Field(min_length=1, max_length=200)
    context_ids: dict[str, int] = Field(default_factory=dict)
    category: Category | None = None


class WebhookEvent(Payload):
    """An integration event to fan out to the webhook endpoints that want it."""

    event: str = Field(pattern=r"^[a-z][a-z0-9_.]*$", max_length=100)
    data: dict[str, Any]


class WebhookDelivery(Payload):
    """POST event *event_id* to endpoint *endpoint_id*, signed."""

    endpoint_id: int = Field(gt=0)
    event: str = Field(pattern=r"^[a-z][a-z0-9_.]*$", max_length=100)
    event_id: str = Field(min_length=1, max_length=100)
    occurred_at: dt.datetime
    data: dict[str, Any]


class OpsAlert(Payload):
    """Tell the operators about *kind* from *source*, once per *alert_key*."""

    alert_key: str = Field(min_length=1, max_length=200)
    source: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=50)
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=50)
    severity: Literal["info", "warning", "critical"] = "warning"
    #: One line for the subject: facts only, never personal data.
    summary: str = Field(min_length=1, max_length=300)
    #: The figures behind the alert (metric values, thresholds).
    facts: dict[str, float | int | str] = Field(default_factory=dict)
    #: Email this address instead of the operators' (an on-call person, the team owning what alerted):
    #: not a user of the platform, so no id can stand for it; personal, so sealed.
    notify: SealedStr | None = None


#: A content id of an inline image: what the HTML's ``<img src="cid:…">`` names.
CONTENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
#: Inline images one operator email may carry.
MAX_INLINE_IMAGES = 10


class InlineImage(Payload):
    """An image shown inside an email's HTML (``<img src="cid:CONTENT_ID">``), read from storage."""

    content_id: str = Field(pattern=CONTENT_ID_PATTERN)
    #: The object holding the image (the sender put it there): a key, never the bytes.
    storage_key: str = Field(min_length=1, max_length=1024)
    content_type: Literal["image/png", "image/jpeg", "image/gif"] = "image/png"

    @field_validator("storage_key")
    @classmethod
    def _safe_key(cls, value: str) -> str:
        return validate_key(value)


class OperatorEmail(Payload):
    """Email the operators an HTML document with inline images (a report), once per *idempotency_key*.

    The HTML and text are the sender's, already rendered (facts about the platform, never
    personal data); each image is referenced by its storage key and shown where the HTML
    says ``cid:<content_id>``.
    """

    idempotency_key: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=20_000)
    html: str = Field(min_length=1, max_length=500_000)
    images: list[InlineImage] = Field(default_factory=list, max_length=MAX_INLINE_IMAGES)

    @model_validator(mode="after")
    def _images_referenced(self) -> OperatorEmail:
        ids = [image.content_id for image in self.images]
        if len(set(ids)) != len(ids):
            raise ValueError(f"images: content ids must be unique, got {ids}")
        missing = [cid for cid in ids if f"cid:{cid}" not in self.html]
        if missing:
            raise ValueError(f"images: the HTML never shows cid:{missing[0]} (every image must be referenced)")
        return self


SEND_EMAIL = Contract("notifications", "send_email", Lane.HIGH, EmailRequest)
SEND_EMAIL_CRITICAL = Contract("notifications", "send_email_critical", Lane.CRITICAL, EmailRequest)
#: Operators' alerts go ahead of transactional mail: they are few and someone should act.
SEND_OPS_ALERT = Contract("notifications", "send_ops_alert", Lane.CRITICAL, OpsAlert)
#: Operators' documents (the weekly and monthly reports): nobody waits on them.
SEND_OPERATOR_EMAIL = Contract("notifications", "send_operator_email", Lane.NORMAL, OperatorEmail)
#: Digests and announcements: many recipients per message, after everything else.
SEND_BULK_EMAIL = Contract(
    "notifications", "send_bulk_email", Lane.LOW, BulkEmailBatch, options={"time_limit": 900_000}
)
#: Report bulk recipients left uncertain by a crash and still unconfirmed after the grace period.
CHECK_UNCERTAIN_BULK_EMAIL = Contract("notifications", "check_uncertain_bulk_email", Lane.LOW, NoArguments)
SEND_PUSH = Contract("notifications", "send_push", Lane.HIGH, PushRequest)
DISPATCH_WEBHOOKS = Contract("notifications", "dispatch_webhooks", Lane.NORMAL, WebhookEvent)
DELIVER_WEBHOOK = Contract(
    "notifications",
    "deliver_webhook",
    Lane.NORMAL,
    WebhookDelivery,
    options={"time_limit": 60_000},
)
#: Message options of every ``deliver_webhook`` message: its retry schedule (set per message, so
#: that importing the actors never depends on the broker's middleware).
DELIVER_WEBHOOK_OPTIONS = {"retry_delays_ms": list(WEBHOOK_RETRY_DELAYS_MS)}
