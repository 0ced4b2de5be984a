"""Contracts of the users service's actors."""

from __future__ import annotations

from nightshift.common.contracts import Contract, NoArguments, Payload
from nightshift.common.lanes import Lane


class UserRef(Payload):
    user_id: int


SEND_WELCOME_EMAIL = Contract("users", "send_welcome_email", Lane.HIGH, UserRef)
CLEANUP_EXPIRED_TOKENS = Contract("users", "cleanup_expired_tokens", Lane.LOW, NoArguments)
UPDATE_USER_STATISTICS = Contract("users", "update_user_statistics", Lane.NORMAL, NoArguments)
