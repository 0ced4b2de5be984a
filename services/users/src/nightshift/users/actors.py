"""The users service's actors: parse ids, call the logic."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from nightshift.common import runtime
from nightshift.common.contracts import NoArguments, contract_actor
from nightshift.common.contracts import gdpr as gdpr_contracts
from nightshift.common.contracts.gdpr import GdprRequestRef
from nightshift.common.contracts.users import (
    ASSEMBLE_USER_EXPORT,
    CHECK_GDPR_DEADLINES,
    CLEANUP_EXPIRED_TOKENS,
    ERASE_USER,
    EXPORT_USER_DATA,
    FINISH_USER_ERASURE,
    SEND_WELCOME_EMAIL,
    UPDATE_USER_STATISTICS,
    UserRef,
)
from nightshift.common.db.engine import transaction
from nightshift.common.gdpr.deadlines import alert_overdue_requests
from nightshift.common.gdpr.settings import GdprSettings
from nightshift.users import export_archive, gdpr, statistics, tokens, welcome
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


@contract_actor(EXPORT_USER_DATA)
def export_user_data(payload: GdprRequestRef) -> None:
    """Start a GDPR export: send every service its part (the archive follows when all are done)."""
    gdpr.start_export(runtime.session_factory(), payload.request_id)


@contract_actor(ERASE_USER)
def erase_user(payload: GdprRequestRef) -> None:
    """Start a GDPR erasure: send every service its part (the account goes when all are done)."""
    gdpr.start_erasure(runtime.session_factory(), payload.request_id)


@contract_actor(gdpr_contracts.export_part(gdpr.SERVICE))
def gdpr_export_users(payload: GdprRequestRef) -> None:
    """Write the account, sessions, tokens, counters and requests for a GDPR export."""
    gdpr.export_part(runtime.session_factory(), runtime.storage(), payload.request_id)


@contract_actor(gdpr_contracts.erase_part(gdpr.SERVICE))
def gdpr_erase_users(payload: GdprRequestRef) -> None:
    """Delete the user's tokens, sessions, counters and welcome key."""
    gdpr.erase_part(runtime.session_factory(), payload.request_id)


@contract_actor(ASSEMBLE_USER_EXPORT)
def assemble_user_export(payload: GdprRequestRef) -> None:
    """Zip every part of an export into one archive, link it and ask for the email."""
    export_archive.assemble_export(
        runtime.session_factory(),
        runtime.storage(),
        payload.request_id,
        link_lifetime=runtime.service_settings(GdprSettings).export_link_lifetime(),
    )


@contract_actor(FINISH_USER_ERASURE)
def finish_user_erasure(payload: GdprRequestRef) -> None:
    """Delete the account, scrub queued work, events and job records, and record the completion."""
    gdpr.finish_erasure(runtime.session_factory(), runtime.storage(), _redis_broker(), payload.request_id)


@contract_actor(CHECK_GDPR_DEADLINES)
def check_gdpr_deadlines(payload: NoArguments) -> None:
    """Alert the operators about every GDPR request past its deadline (once each)."""
    alert_overdue_requests(runtime.session_factory())


def _redis_broker() -> RedisBroker:
    broker = dramatiq.get_broker()
    if not isinstance(broker, RedisBroker):
        raise TypeError(f"the erasure scrubs Redis queues: it needs a Redis broker, not {type(broker).__name__}")
    return broker
