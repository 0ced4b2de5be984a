"""The ops service's actors: alert notices and raised alerts, and the platform's maintenance."""

from __future__ import annotations

import datetime as dt

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from nightshift.common import runtime
from nightshift.common.contracts import NoArguments, contract_actor
from nightshift.common.contracts.notifications import SEND_OPS_ALERT, OpsAlert
from nightshift.common.contracts.ops import (
    BUILD_REPORT,
    CHECK_DEPENDENCIES,
    COLLECT_CACHE_STATS,
    DELIVER_ALERT_NOTICE,
    PURGE_EXPIRED_DATA,
    RECORD_RAISED_ALERT,
    ROLL_UP_ACTOR_STATS,
    AlertNoticeRef,
    ReportRequest,
)
from nightshift.common.redis_ha import redis_client
from nightshift.ops import alert_delivery, alert_lifecycle, maintenance, report_email, reports
from nightshift.ops.context import service_queues
from nightshift.ops.settings import OpsSettings


def _run_key(kind: str) -> str | None:
    message = CurrentMessage.get_current_message()
    return f"{kind}:{message.message_id}" if message is not None else None


def _options() -> OpsSettings:
    return runtime.service_settings(OpsSettings)


def _redis_broker() -> RedisBroker:
    broker = dramatiq.get_broker()
    if not isinstance(broker, RedisBroker):
        raise TypeError(f"the ops worker needs the Redis broker, not {type(broker).__name__}")
    return broker


def _broker_client() -> redis.Redis[bytes]:
    settings = runtime.settings()
    return redis_client(settings, db=settings.broker_redis_db)  # through Sentinel when configured


def _cache_client() -> redis.Redis[bytes]:
    """``OPS_CACHE_REDIS_URL``'s Redis when set, else the application's (through Sentinel when configured)."""
    url = _options().cache_redis_url
    if not url:
        return runtime.app_redis()
    # The platform's client options (TLS, timeouts) on the cache's own URL, not through Sentinel.
    return redis_client(runtime.settings().model_copy(update={"redis_url": url, "redis_sentinels": None}))


@contract_actor(RECORD_RAISED_ALERT)
def record_raised_alert(payload: OpsAlert) -> None:
    """Record an alert raised by another service; deliver it unless silenced or known."""
    notice_id = alert_lifecycle.raise_external(runtime.session_factory(), payload, dt.datetime.now(dt.UTC))
    if notice_id is not None:
        DELIVER_ALERT_NOTICE.send({"notice_id": notice_id})
        if payload.notify is not None:
            # The address it names gets its own copy; still sealed: only notifications' actor opens it.
            SEND_OPS_ALERT.send(payload.model_copy(update={"alert_key": f"{payload.alert_key[:190]}:notify"}))


@contract_actor(DELIVER_ALERT_NOTICE)
def deliver_alert_notice(payload: AlertNoticeRef) -> None:
    """Email the notice through notifications and POST it to the webhook, each once."""
    alert_delivery.deliver_notice(runtime.session_factory(), dramatiq.get_broker(), _options(), payload.notice_id)


@contract_actor(COLLECT_CACHE_STATS)
def collect_cache_stats(payload: NoArguments) -> None:
    """Sample the application cache and store a point of its statistics."""
    options = _options()
    client = runtime.resource(_cache_client, key="cache")
    maintenance.collect_cache_stats(runtime.session_factory(), client, options, run_key=_run_key("cache_stats"))


@contract_actor(PURGE_EXPIRED_DATA)
def purge_expired_data(payload: NoArguments) -> None:
    """Delete what is past retention in bounded batches and record how much."""
    options = _options()
    queues = [queue for pool in service_queues(options.extra_queue_names()).values() for queue in pool]
    maintenance.purge_expired_data(
        runtime.session_factory(),
        _redis_broker(),
        queues,
        options,
        run_key=_run_key("purge"),
    )


@contract_actor(ROLL_UP_ACTOR_STATS)
def roll_up_actor_stats(payload: NoArguments) -> None:
    """Sum the audit rows recorded since the last run per actor and minute (the Actors page reads them)."""
    maintenance.roll_up_actor_stats(runtime.session_factory(), _options(), run_key=_run_key("actor_rollup"))


@contract_actor(CHECK_DEPENDENCIES)
def check_dependencies(payload: NoArguments) -> None:
    """Probe PostgreSQL, Redis, storage and mail; failures raise ``dependency`` alerts."""
    maintenance.check_dependencies(
        runtime.session_factory(),
        dramatiq.get_broker(),
        runtime.resource(_broker_client),
        runtime.app_redis(),
        runtime.storage(),
        runtime.settings(),
        _options(),
        run_key=_run_key("dependencies"),
    )


@contract_actor(BUILD_REPORT)
def build_report(payload: ReportRequest) -> None:
    """Build the last closed period's report, store it, and email it to the operators with its charts inline."""
    sessions = runtime.session_factory()
    report_id, _ = reports.build_report(
        sessions, payload.period, now=dt.datetime.now(dt.UTC), timezone=runtime.settings().timezone
    )
    report_email.email_report(sessions, runtime.storage(), report_id, public_url=_options().public_url)
