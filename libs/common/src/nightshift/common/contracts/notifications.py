"""Contracts of the notifications service's actors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nightshift.common.contracts import Contract, Payload
from nightshift.common.lanes import Lane


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


SEND_EMAIL = Contract("notifications", "send_email", Lane.HIGH, EmailRequest)
SEND_EMAIL_CRITICAL = Contract("notifications", "send_email_critical", Lane.CRITICAL, EmailRequest)
#: Operators' alerts go ahead of transactional mail: they are few and someone should act.
SEND_OPS_ALERT = Contract("notifications", "send_ops_alert", Lane.CRITICAL, OpsAlert)
