"""Delivering integration events to webhook endpoints.

``dispatch_webhooks`` receives an integration event and enqueues one
``deliver_webhook`` per enabled endpoint subscribed to it (message ids derived
from the event's id and the endpoint, so a redelivered dispatch enqueues the
same messages). ``deliver_webhook`` POSTs the event, signed (Standard
Webhooks), through :mod:`.safe_http`, behind the endpoint's own circuit breaker:

* a 2xx answer is success: the delivery is recorded, the endpoint's failing
  period ends;
* anything else (3xx included: redirects are not followed), a timeout or a
  refused connection is a failure: recorded, the breaker counts it and the
  message is retried on the webhook schedule (1 min, 5 min, 30 min, 2 h, 6 h, 12 h);
* while the breaker is open the message waits without using a retry;
* an endpoint failing for longer than ``NOTIFICATIONS_WEBHOOK_DISABLE_AFTER_S``
  is disabled and its owner notified (``webhook_disabled`` email); pending
  deliveries to it are dropped;
* an endpoint whose host now resolves to a non-public address is refused: the
  delivery is dropped (a permanent error).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.breakers import CircuitBreaker
from nightshift.common.contracts.notifications import WebhookDelivery
from nightshift.common.db.engine import transaction
from nightshift.common.errors import TransientError
from nightshift.common.outbox import publish_in_transaction
from nightshift.notifications.models import WebhookDeliveryLog, WebhookEndpoint
from nightshift.notifications.webhooks import safe_http
from nightshift.notifications.webhooks.endpoints import secrets_in_use
from nightshift.notifications.webhooks.signing import sign

#: Namespace of the ids of ``deliver_webhook`` messages (event id + endpoint).
DELIVERY_NAMESPACE = uuid.UUID("0b4f3d0e-9a6c-4bde-8f7e-5d1c2a9e7b31")
#: The template telling an endpoint's owner it was disabled.
DISABLED_TEMPLATE = "webhook_disabled"


class WebhookFailed(TransientError):
    """The endpoint did not answer 2xx (or could not be reached); retried on the webhook schedule.

    Parameters:
      status_code: The endpoint's answer, when it gave one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class WebhookPolicy:
    """How deliveries behave (from the settings)."""

    timeout_s: float = 5.0
    breaker_failures: int = 5
    breaker_open_ms: int = 60_000
    disable_after: dt.timedelta = dt.timedelta(days=5)
    allow_loopback: bool = False


def delivery_message_id(event_id: str, endpoint_id: int) -> str:
    """The id of the ``deliver_webhook`` message of *event_id* to *endpoint_id*."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}:{endpoint_id}"))


def dispatch_webhooks(
    sessions: sessionmaker[Session],
    event: str,
    data: dict[str, object],
    *,
    event_id: str,
    send: Callable[[WebhookDelivery, str], object],
) -> int:
    """Enqueue one delivery per enabled endpoint subscribed to *event*; return how many."""
    with sessions() as session:
        endpoints = session.scalars(
            select(WebhookEndpoint.id).where(
                WebhookEndpoint.enabled.is_(True), WebhookEndpoint.events.contains([event])
            )
        ).all()
    occurred_at = dt.datetime.now(dt.UTC)
    for endpoint_id in endpoints:
        delivery = WebhookDelivery(
            endpoint_id=endpoint_id, event=event, event_id=event_id, occurred_at=occurred_at, data=data
        )
        send(delivery, delivery_message_id(event_id, endpoint_id))
    return len(endpoints)


def endpoint_breaker(client: redis.Redis[bytes], endpoint_id: int, policy: WebhookPolicy) -> CircuitBreaker:
    """The circuit breaker of one endpoint, shared by every worker."""
    return CircuitBreaker(
        client, f"webhook:{endpoint_id}", failure_threshold=policy.breaker_failures, open_ms=policy.breaker_open_ms
    )


def deliver_webhook(
    sessions: sessionmaker[Session], client: redis.Redis[bytes], delivery: WebhookDelivery, *, policy: WebhookPolicy
) -> str:
    """POST *delivery* to its endpoint, signed, behind the endpoint's breaker.

    Returns:
      ``delivered``, ``already_delivered`` or ``dropped`` (endpoint gone or disabled).

    Raises:
      BreakerOpen: The endpoint's breaker is open (the message waits, keeping its retries).
      WebhookFailed: A non-2xx answer, a timeout or a refused connection (retried).
      UnsafeUrl: The endpoint now resolves to a non-public address (dead-lettered).
    """
    now = dt.datetime.now(dt.UTC)
    with sessions() as session:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        done = session.get(WebhookDeliveryLog, (delivery.endpoint_id, delivery.event_id))
        if done is not None and done.status == "delivered":
            return "already_delivered"
        if endpoint is None or not endpoint.enabled:
            if endpoint is not None:
                _record(sessions, delivery, "dropped", None, "endpoint disabled", attempt=False)
            return "dropped"
        if endpoint.failing_since is not None and now - endpoint.failing_since > policy.disable_after:
            _disable(sessions, endpoint.id, endpoint.owner_user_id, now)
            _record(sessions, delivery, "dropped", None, "endpoint disabled after failing", attempt=False)
            return "dropped"
        url, secrets_now = endpoint.url, secrets_in_use(endpoint, now)
        session.expunge_all()
    body = json.dumps(
        {"type": delivery.event, "timestamp": delivery.occurred_at.isoformat(), "data": delivery.data},
        separators=(",", ":"),
    ).encode()
    headers = {
        **sign(secrets_now, delivery.event_id, int(time.time()), body),
        "Content-Type": "application/json",
        "User-Agent": "Nightshift-Webhooks/1",
    }
    breaker = endpoint_breaker(client, delivery.endpoint_id, policy)
    try:
        with breaker.guard():
            try:
                answer = safe_http.post(
                    url, body, headers, timeout_s=policy.timeout_s, allow_loopback=policy.allow_loopback
                )
            except (OSError, http.client.HTTPException) as error:
                raise WebhookFailed(f"webhook endpoint unreachable: {type(error).__name__}") from None
            if not 200 <= answer.status < 300:
                raise WebhookFailed(f"webhook endpoint answered {answer.status}", status_code=answer.status)
    except WebhookFailed as error:
        _record(sessions, delivery, "failing", error.status_code, str(error))
        _mark_failing(sessions, delivery.endpoint_id)
        raise
    except safe_http.UnsafeUrl as error:
        _record(sessions, delivery, "dropped", None, str(error))
        raise
    _record(sessions, delivery, "delivered", answer.status, None)
    with transaction(sessions) as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == delivery.endpoint_id, WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )
    return "delivered"


def _record(
    sessions: sessionmaker[Session],
    delivery: WebhookDelivery,
    status: str,
    status_code: int | None,
    error: str | None,
    *,
    attempt: bool = True,
) -> None:
    values = {
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event": delivery.event,
        "status": status,
        "attempts": 1 if attempt else 0,
        "last_status_code": status_code,
        "last_error": error[:300] if error else None,
    }
    statement = insert(WebhookDeliveryLog).values(**values)
    with transaction(sessions) as session:
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[WebhookDeliveryLog.endpoint_id, WebhookDeliveryLog.event_id],
                set_={
                    "status": status,
                    "attempts": WebhookDeliveryLog.attempts + (1 if attempt else 0),
                    "last_status_code": status_code,
                    "last_error": values["last_error"],
                    "updated_at": func.now(),
                },
            )
        )


def _mark_failing(sessions: sessionmaker[Session], endpoint_id: int) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=func.now())
        )


def _disable(sessions: sessionmaker[Session], endpoint_id: int, owner_user_id: int, now: dt.datetime) -> None:
    """Disable the endpoint and, in the same transaction, ask for its owner to be told (once)."""
    with transaction(sessions) as session:
        changed = session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_at=now, disabled_reason="failing for longer than the allowed period")
        )
        if changed.rowcount:  # type: ignore[attr-defined]
            publish_in_transaction(
                session,
                "notification.requested",
                {
                    "user_id": owner_user_id,
                    "template": DISABLED_TEMPLATE,
                    "idempotency_key": f"webhook_disabled:{endpoint_id}:{int(now.timestamp())}",
                    "context_ids": {"endpoint_id": endpoint_id},
                },
                aggregate_id=f"webhook_endpoint:{endpoint_id}",
            )
