"""The users service's actors: parse ids, call the logic."""

from __future__ import annotations

from nightshift.common import runtime
from nightshift.common.contracts import NoArguments, contract_actor
from nightshift.common.contracts.users import (
    CLEANUP_EXPIRED_TOKENS,
    SEND_WELCOME_EMAIL,
    UPDATE_USER_STATISTICS,
    UserRef,
)
from nightshift.common.db.engine import transaction
from nightshift.users import statistics, tokens, welcome
from nightshift.users.settings import UsersSettings


@contract_actor(SEND_WELCOME_EMAIL)
def send_welcome_email(payload: UserRef) -> None:
    """Ask notifications for the welcome email of a new user, once ever."""
    with transaction(runtime.session_factory()) as session:
        welcome.request_welcome_email(session, payload.user_id)


@contract_actor(CLEANUP_EXPIRED_TOKENS)
def cleanup_expired_tokens(payload: NoArguments) -> None:
    """Delete expired or revoked tokens and stale sessions in bounded batches."""
    settings = runtime.service_settings(UsersSettings)
    tokens.cleanup_expired_tokens(
        runtime.session_factory(),
        batch_size=settings.cleanup_batch_size,
        session_retention=settings.session_retention(),
    )


@contract_actor(UPDATE_USER_STATISTICS)
def update_user_statistics(payload: NoArguments) -> None:
    """Recompute every user's counters set-based."""
    statistics.update_user_statistics(runtime.session_factory())
