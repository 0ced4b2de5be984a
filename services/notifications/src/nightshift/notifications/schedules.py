"""The notifications service's periodic jobs, fired by the scheduler service.

Notifications mostly reacts (``notification.requested``, digest batches composed by
posts); its one schedule looks for bulk recipients a crash left uncertain and that
SendGrid's events have not confirmed within the grace period.
"""

from __future__ import annotations

from nightshift.common.contracts.notifications import CHECK_UNCERTAIN_BULK_EMAIL
from nightshift.common.schedules import Schedule

SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "check_uncertain_bulk_email",
        "*/10 * * * *",
        CHECK_UNCERTAIN_BULK_EMAIL,
        overlap="skip",
        description="Alert the operators about bulk recipients a crash left unconfirmed past the grace period.",
    ),
)
