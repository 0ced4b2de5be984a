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
    urgency: Literal["high", "critical"] = "high"


SEND_EMAIL = Contract("notifications", "send_email", Lane.HIGH, EmailRequest)
SEND_EMAIL_CRITICAL = Contract("notifications", "send_email_critical", Lane.CRITICAL, EmailRequest)
