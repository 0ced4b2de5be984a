"""Messages are JSON with datetimes, UUIDs and decimals; payloads are checked against contracts."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from nightshift.common.contracts.notifications import SEND_EMAIL
from nightshift.common.contracts.users import SEND_WELCOME_EMAIL
from nightshift.common.encoder import MessageEncoder
from nightshift.common.errors import InvalidEvent, InvalidPayload, UnknownEvent
from nightshift.common.events import event_messages, validate_event
from nightshift.common.lanes import Lane, queue_name


def test_encoder_writes_datetimes_uuids_and_decimals_as_json() -> None:
    when = dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    data = MessageEncoder().encode({"at": when, "id": ident, "amount": decimal.Decimal("1.10")})  # type: ignore[dict-item]

    assert json.loads(data) == {"at": "2026-03-29T02:30:00+00:00", "id": str(ident), "amount": "1.10"}


def test_encoder_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="cannot encode object in a message"):
        MessageEncoder().encode({"x": object()})  # type: ignore[dict-item]


def test_contract_message_is_built_by_name_with_the_lane_queue() -> None:
    message = SEND_WELCOME_EMAIL.message({"user_id": 5})

    assert (message.actor_name, message.queue_name, message.kwargs) == (
        "send_welcome_email",
        "users_high",
        {"user_id": 5},
    )


def test_contract_refuses_personal_data_and_names_the_field() -> None:
    with pytest.raises(InvalidPayload, match=r"send_welcome_email: email: Extra inputs are not permitted"):
        SEND_WELCOME_EMAIL.parse({"user_id": 5, "email": "ada@example.org"})


def test_unknown_event_lists_the_known_ones() -> None:
    with pytest.raises(UnknownEvent, match=r"unknown event 'user\.created' \(known events: .*user\.registered"):
        validate_event("user.created", {"user_id": 1})


def test_invalid_event_names_field_and_version() -> None:
    with pytest.raises(InvalidEvent, match=r"user\.registered v1: user_id: Input should be greater than 0"):
        validate_event("user.registered", {"user_id": 0})


def test_notification_routes_by_urgency() -> None:
    spec, event = validate_event(
        "notification.requested", {"user_id": 1, "template": "welcome", "idempotency_key": "k", "urgency": "critical"}
    )
    [message] = event_messages(spec, event)

    assert message.queue_name == queue_name("notifications", Lane.CRITICAL)
    assert message.kwargs["idempotency_key"] == "k"
    assert "channel" not in message.kwargs
    assert SEND_EMAIL.queue_name == "notifications_high"


def test_idempotency_base_gives_stable_message_ids() -> None:
    spec, event = validate_event("user.registered", {"user_id": 3})

    first = [m.message_id for m in event_messages(spec, event, idempotency_base="outbox:9")]
    again = [m.message_id for m in event_messages(spec, event, idempotency_base="outbox:9")]
    other = [m.message_id for m in event_messages(spec, event, idempotency_base="outbox:10")]

    assert first == again
    assert first != other


def test_lanes_order_critical_first() -> None:
    assert sorted(Lane, key=lambda lane: lane.priority) == [Lane.CRITICAL, Lane.HIGH, Lane.NORMAL, Lane.LOW]


def test_events_and_actors_share_one_payload_base() -> None:
    from nightshift.common.contracts import NoArguments, Payload
    from nightshift.common.contracts.media import CLEANUP_ORPHAN_MEDIA
    from nightshift.common.events.catalog import CATALOG

    assert all(issubclass(spec.schema, Payload) for spec in CATALOG.values())
    assert CLEANUP_ORPHAN_MEDIA.payload is NoArguments
    with pytest.raises(InvalidPayload, match=r"cleanup_orphan_media: media_id: Extra inputs are not permitted"):
        CLEANUP_ORPHAN_MEDIA.parse({"media_id": 1})
    with pytest.raises(InvalidEvent, match=r"media\.uploaded v1: owner_email: Extra inputs are not permitted"):
        validate_event("media.uploaded", {"media_id": 1, "owner_email": "ada@example.org"})
