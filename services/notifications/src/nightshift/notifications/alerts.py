"""Emailing the operators about an ``ops.alert_raised`` event, once per alert key.

Until the ops service exists, alerts go by email to ``NOTIFICATIONS_OPERATORS_ADDRESS``.
The key is claimed in the transaction that wraps the send, so a redelivered alert is
not sent again once the first send committed (at least once, as for user emails).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import OpsAlert
from nightshift.common.db.engine import transaction
from nightshift.common.idempotency import claim
from nightshift.notifications.mailers import Address, Email, Mailer
from nightshift.notifications.rendering import EmailTemplates

#: The template of operators' alerts (English only: operators share one language).
ALERT_TEMPLATE = "ops_alert"


def send_ops_alert(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    alert: OpsAlert,
    *,
    operators_address: str,
    templates: EmailTemplates | None = None,
) -> bool:
    """Email *alert* to *operators_address* unless its key was sent already.

    Returns:
      True if it was sent now, False if its key had been sent before.

    Raises:
      TemplateFailed: The template could not be rendered.
      ProviderUnavailable, ProviderRejected: As for any email.
    """
    templates = templates or EmailTemplates()
    with transaction(sessions) as session:
        if not claim(session, f"ops_alert:{alert.alert_key}"):
            return False
        rendered = templates.render(ALERT_TEMPLATE, "en", alert.model_dump(mode="json", exclude={"notify"}))
        mailer.send(
            Email(
                recipient=Address(operators_address, "Nightshift operators"),
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                idempotency_key=f"ops_alert:{alert.alert_key}",
            )
        )
    return True
