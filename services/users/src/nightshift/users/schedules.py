"""The users service's periodic jobs, fired by the scheduler service."""

from __future__ import annotations

from nightshift.common.contracts.users import CHECK_GDPR_DEADLINES, CLEANUP_EXPIRED_TOKENS, UPDATE_USER_STATISTICS
from nightshift.common.schedules import Schedule

SCHEDULES = (
    Schedule(
        "cleanup_expired_tokens",
        "0 2 * * *",
        CLEANUP_EXPIRED_TOKENS,
        overlap="skip",
        description="Delete expired or revoked tokens and stale sessions, in batches.",
    ),
    Schedule(
        "update_user_statistics",
        "0 3 * * *",
        UPDATE_USER_STATISTICS,
        overlap="skip",
        description="Recompute per-user counters set-based in SQL.",
    ),
    Schedule(
        "check_gdpr_deadlines",
        "30 8 * * *",
        CHECK_GDPR_DEADLINES,
        overlap="skip",
        description="Alert the operators about GDPR requests past their deadline (once each).",
    ),
)
