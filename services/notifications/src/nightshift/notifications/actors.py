"""The notifications service's actors: parse ids, call the logic."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import dramatiq
from dramatiq.middleware import CurrentMessage

from nightshift.common import runtime
from nightshift.common.contracts import NoArguments, contract_actor
from nightshift.common.contracts import gdpr as gdpr_contracts
from nightshift.common.contracts import notifications as notification_contracts
from nightshift.common.contracts.gdpr import GdprRequestRef
from nightshift.common.contracts.notifications import (
    CHECK_UNCERTAIN_BULK_EMAIL,
    DELIVER_WEBHOOK,
    DISPATCH_WEBHOOKS,
    SEND_BULK_EMAIL,
    SEND_EMAIL,
    SEND_EMAIL_CRITICAL,
    SEND_OPERATOR_EMAIL,
    SEND_OPS_ALERT,
    SEND_PUSH,
    BulkEmailBatch,
    EmailRequest,
    OperatorEmail,
    OpsAlert,
    PushRequest,
    WebhookDelivery,
    WebhookEvent,
)
from nightshift.notifications import alerts, bulk, bulk_reconcile, delivery, gdpr, operator_email
from nightshift.notifications.mailers import configured_mailer
from nightshift.notifications.public import configured_links
from nightshift.notifications.push import sending
from nightshift.notifications.push.clients import configured_push
from nightshift.notifications.rendering import configured_templates
from nightshift.notifications.settings import NotificationsSettings
from nightshift.notifications.webhooks import delivery as webhooks

logger = logging.getLogger(__name__)


@contract_actor(SEND_EMAIL)
def send_email(payload: EmailRequest) -> None:
    """Send a transactional email, once per idempotency key."""
    _send(payload)


@contract_actor(SEND_EMAIL_CRITICAL)
def send_email_critical(payload: EmailRequest) -> None:
    """Send a security or urgent email, once per idempotency key, ahead of everything else."""
    _send(payload)


def _send(payload: EmailRequest) -> None:
    delivery.send_email(
        runtime.session_factory(),
        runtime.resource(configured_mailer),
        payload,
        templates=runtime.resource(configured_templates),
    )


@contract_actor(SEND_OPS_ALERT)
def send_ops_alert(payload: OpsAlert) -> None:
    """Email an alert to the operators' address, or to the sealed one it names (opened here), once per key."""
    default_address = runtime.service_settings(NotificationsSettings).operators_address
    alerts.send_ops_alert(
        runtime.session_factory(),
        runtime.resource(configured_mailer),
        payload,
        operators_address=runtime.sealer().open(payload.notify) if payload.notify else default_address,
        templates=runtime.resource(configured_templates),
    )


@contract_actor(SEND_OPERATOR_EMAIL)
def send_operator_email(payload: OperatorEmail) -> None:
    """Email the operators a rendered document (a report) with its images inline, once per key."""
    operator_email.send_operator_email(
        runtime.session_factory(),
        runtime.resource(configured_mailer),
        runtime.storage(),
        payload,
        operators_address=runtime.service_settings(NotificationsSettings).operators_address,
    )


@contract_actor(gdpr_contracts.export_part(gdpr.SERVICE))
def gdpr_export_notifications(payload: GdprRequestRef) -> None:
    """Write the user's delivery log (and any other table of theirs here) for a GDPR export."""
    gdpr.export_part(runtime.session_factory(), runtime.storage(), payload.request_id)


@contract_actor(gdpr_contracts.erase_part(gdpr.SERVICE))
def gdpr_erase_notifications(payload: GdprRequestRef) -> None:
    """Delete the user's delivery log and the emails the outbox backend kept for them."""
    settings = runtime.settings()
    outbox = Path(settings.outbox_dir) if settings.mail_backend == "outbox" else None
    gdpr.erase_part(runtime.session_factory(), payload.request_id, outbox_dir=outbox)


@contract_actor(SEND_BULK_EMAIL)
def send_bulk_email(payload: BulkEmailBatch) -> None:
    """Send a campaign's batch in provider-sized requests, once per recipient."""
    outcome = bulk.send_bulk_email(
        runtime.session_factory(),
        runtime.resource(configured_mailer),
        payload,
        links=runtime.resource(configured_links),
        templates=runtime.resource(configured_templates),
    )
    logger.info(
        "send_bulk_email %s: %d sent in %d requests, skipped %s, %d already done, %d left uncertain, %d resent.",
        payload.campaign,
        outcome.sent,
        outcome.requests,
        dict(outcome.skipped) or "none",
        outcome.already_done,
        outcome.uncertain,
        outcome.resent,
    )
    if outcome.uncertain:
        logger.warning(
            "send_bulk_email %s: %d recipients were in flight when a sender died: not sent again, "
            "awaiting SendGrid's events (see docs/notifications.md).",
            payload.campaign,
            outcome.uncertain,
        )


@contract_actor(CHECK_UNCERTAIN_BULK_EMAIL)
def check_uncertain_bulk_email(payload: NoArguments) -> None:
    """Alert the operators about bulk recipients still unconfirmed after the grace period."""
    settings = runtime.service_settings(NotificationsSettings)
    alerted = bulk_reconcile.alert_uncertain(
        runtime.session_factory(), grace=dt.timedelta(seconds=settings.bulk_uncertain_grace_s)
    )
    if alerted:
        logger.warning("check_uncertain_bulk_email: %d campaigns with unconfirmed recipients alerted.", alerted)


@contract_actor(SEND_PUSH)
def send_push(payload: PushRequest) -> None:
    """Push to every device of the user, once per device; dead tokens are removed."""
    outcome = sending.send_push(
        runtime.session_factory(),
        runtime.resource(configured_push),
        payload,
        templates=runtime.resource(configured_templates),
    )
    logger.info(
        "send_push %s: %d sent, %d dead tokens removed, %d already done.",
        payload.idempotency_key,
        outcome.sent,
        outcome.removed,
        outcome.already_done,
    )


@contract_actor(DISPATCH_WEBHOOKS)
def dispatch_webhooks(payload: WebhookEvent) -> None:
    """Enqueue one signed delivery per endpoint subscribed to the event (the event id is this message's id)."""
    message: dramatiq.Message[object] | None = CurrentMessage.get_current_message()
    event_id = message.message_id if message is not None else payload.event
    webhooks.dispatch_webhooks(
        runtime.session_factory(),
        payload.event,
        payload.data,
        event_id=event_id,
        send=lambda delivery, message_id: DELIVER_WEBHOOK.send(
            delivery, message_id=message_id, options=notification_contracts.DELIVER_WEBHOOK_OPTIONS
        ),
    )


@contract_actor(DELIVER_WEBHOOK)
def deliver_webhook(payload: WebhookDelivery) -> None:
    """POST one event to one endpoint, signed, behind the endpoint's breaker; retried on the webhook schedule."""
    webhooks.deliver_webhook(
        runtime.session_factory(), runtime.app_redis(), payload, policy=runtime.resource(webhook_policy)
    )


def webhook_policy() -> webhooks.WebhookPolicy:
    """The webhook delivery policy of this process's settings."""
    settings = runtime.service_settings(NotificationsSettings)
    return webhooks.WebhookPolicy(
        timeout_s=settings.webhook_timeout_s,
        breaker_failures=settings.webhook_breaker_failures,
        breaker_open_ms=int(settings.webhook_breaker_open_s * 1000),
        disable_after=dt.timedelta(seconds=settings.webhook_disable_after_s),
        allow_loopback=settings.webhooks_allow_loopback,
    )
