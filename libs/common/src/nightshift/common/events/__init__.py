"""Publishing events: validate against the catalog, then one message per subscriber.

Validation happens before anything touches Redis, so an unknown event or an
invalid payload is refused with nothing enqueued.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import dramatiq
from dramatiq import Message
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from nightshift.common.contracts import describe_validation_error
from nightshift.common.errors import InvalidEvent, UnknownEvent
from nightshift.common.events.catalog import CATALOG
from nightshift.common.events.spec import EventSpec

#: Namespace of the deterministic message ids given to re-sendable publications.
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c7b1e-4a52-4d0c-9d3e-2b8c7e1a9f10")

_tracer = trace.get_tracer("nightshift.events")


def validate_event(name: str, payload: Mapping[str, Any] | BaseModel) -> tuple[EventSpec, BaseModel]:
    """Look *name* up in the catalog and validate *payload* against its schema.

    Raises:
      UnknownEvent: The name is not in the catalog.
      InvalidEvent: The payload does not match the schema; the message names the fields.
    """
    spec = event_spec(name)
    return spec, _validate(spec, payload, name)


def event_spec(name: str) -> EventSpec:
    """The catalog's entry for *name*.

    Raises:
      UnknownEvent: The name is not in the catalog.
    """
    spec = CATALOG.get(name)
    if spec is None:
        known = ", ".join(sorted(CATALOG))
        raise UnknownEvent(f"unknown event {name!r} (known events: {known})")
    return spec


def _validate(spec: EventSpec, payload: Mapping[str, Any] | BaseModel, label: str) -> BaseModel:
    data = payload.model_dump() if isinstance(payload, BaseModel) else payload
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"{label}: payload must be a JSON object, got {type(data).__name__}")
    try:
        return spec.schema.model_validate(dict(data))
    except ValidationError as error:
        where = label.replace(spec.name, f"{spec.name} v{spec.version}", 1)
        raise InvalidEvent(f"{where}: {describe_validation_error(error)}") from None


def event_messages(
    spec: EventSpec,
    event: BaseModel,
    *,
    idempotency_base: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[Message[Any]]:
    """Build one message per subscriber that accepts *event*.

    Parameters:
      idempotency_base: When given, message ids are derived from it, so that
        publishing the same thing twice (an outbox relay retrying) yields the
        same ids.
    """
    messages = []
    for subscriber in spec.subscribers:
        if not subscriber.accepts(event):
            continue
        message_id = None
        if idempotency_base is not None:
            seed = f"{idempotency_base}:{subscriber.contract.actor_name}"
            message_id = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, seed))
        message_options = {"event": spec.name, "event_version": spec.version, "trigger": f"event:{spec.name}"}
        message_options.update(options or {})
        messages.append(
            subscriber.contract.message(subscriber.payload_for(event), message_id=message_id, options=message_options)
        )
    return messages


def publish(
    name: str,
    payload: Mapping[str, Any] | BaseModel,
    *,
    broker: dramatiq.Broker | None = None,
    idempotency_base: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[Message[Any]]:
    """Validate an event and enqueue one message per subscriber.

    Returns:
      The enqueued messages (their ids are the job ids to poll).

    Raises:
      UnknownEvent, InvalidEvent: Before anything is enqueued.
    """
    spec, event = validate_event(name, payload)
    messages = event_messages(spec, event, idempotency_base=idempotency_base, options=options)
    target = broker or dramatiq.get_broker()
    with _tracer.start_as_current_span(f"publish {name}", kind=trace.SpanKind.PRODUCER) as span:
        span.set_attribute("nightshift.event", name)
        return [target.enqueue(message) for message in messages]


def publish_many(
    name: str,
    payloads: Sequence[Mapping[str, Any] | BaseModel],
    *,
    broker: dramatiq.Broker | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[Message[Any]]:
    """Validate a batch of events *name*, then enqueue one message per subscriber of each, pipelined.

    Every payload is validated before anything is enqueued, so one invalid
    payload means nothing of the batch is sent. On Nightshift's broker the
    messages then go in one round trip per thousand (each through the
    middleware's enqueue hooks, job records included); on another broker, one
    by one.

    Returns:
      The enqueued messages, in payload order then subscriber order.

    Raises:
      UnknownEvent: The name is not in the catalog.
      InvalidEvent: A payload does not match the schema; the message names its
        index in *payloads* and the fields.
    """
    spec = event_spec(name)
    events = [_validate(spec, payload, f"{name} payload {index}") for index, payload in enumerate(payloads)]
    messages = [message for event in events for message in event_messages(spec, event, options=options)]
    target = broker or dramatiq.get_broker()
    with _tracer.start_as_current_span(f"publish {name}", kind=trace.SpanKind.PRODUCER) as span:
        span.set_attribute("nightshift.event", name)
        span.set_attribute("nightshift.events", len(events))
        enqueue_many = getattr(target, "enqueue_many", None)
        if enqueue_many is not None:
            sent: list[Message[Any]] = enqueue_many(messages)
            return sent
        return [target.enqueue(message) for message in messages]
