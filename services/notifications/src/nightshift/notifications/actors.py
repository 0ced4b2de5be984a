"""The notifications service's actors: parse ids, call the logic."""

from __future__ import annotations

from pathlib import Path

from nightshift.common import runtime
from nightshift.common.contracts import contract_actor
from nightshift.common.contracts import gdpr as gdpr_contracts
from nightshift.common.contracts.gdpr import GdprRequestRef
from nightshift.common.contracts.notifications import (
    SEND_EMAIL,
    SEND_EMAIL_CRITICAL,
    SEND_OPS_ALERT,
    EmailRequest,
    OpsAlert,
)
from nightshift.notifications import alerts, delivery, gdpr
from nightshift.notifications.mailers import configured_mailer
from nightshift.notifications.rendering import configured_templates
from nightshift.notifications.settings import NotificationsSettings


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
    """Email an alert to the operators' address, once per alert key."""
    alerts.send_ops_alert(
        runtime.session_factory(),
        runtime.resource(configured_mailer),
        payload,
        operators_address=runtime.service_settings(NotificationsSettings).operators_address,
        templates=runtime.resource(configured_templates),
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
