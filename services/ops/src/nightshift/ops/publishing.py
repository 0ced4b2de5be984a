"""``POST /api/events/{name}``: publish for services in any language, at most once per idempotency key.

The event is validated against the catalog and enqueued by
:func:`nightshift.common.events.publish`, exactly as a Python service would.
With an ``Idempotency-Key``, the message ids are derived from the key and the
key is stored with them in the transaction that enqueues: a retried request
(same key, same event and payload) gets the first request's job ids back and
enqueues nothing; the same key with another request is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dramatiq
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.errors import EventError
from nightshift.common.events import event_messages, publish, validate_event
from nightshift.ops.models import IdempotentRequest

#: Longest idempotency key accepted.
MAX_KEY_CHARS = 200


class IdempotencyConflict(EventError):
    """An idempotency key already used for another event or payload."""


@dataclass(frozen=True)
class Published:
    """What a publish request enqueued (or had enqueued, for a replayed key)."""

    event: str
    job_ids: list[str]
    replayed: bool


def publish_once(
    sessions: sessionmaker[Session],
    broker: dramatiq.Broker,
    name: str,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
) -> Published:
    """Validate and publish event *name*; with *idempotency_key*, at most once per key.

    Raises:
      UnknownEvent, InvalidEvent: Before anything is stored or enqueued.
      IdempotencyConflict: The key was used for another event or payload.
      ValueError: The key is empty or longer than ``MAX_KEY_CHARS``.
    """
    spec, event = validate_event(name, payload)
    if idempotency_key is None:
        return Published(name, [message.message_id for message in publish(name, event, broker=broker)], False)
    if not 0 < len(idempotency_key) <= MAX_KEY_CHARS:
        raise ValueError(f"Idempotency-Key must have 1 to {MAX_KEY_CHARS} characters")
    base = f"http:{idempotency_key}"
    request_digest = hashlib.sha256(
        json.dumps([name, spec.version, event.model_dump(mode="json")], sort_keys=True).encode()
    ).hexdigest()
    job_ids = [message.message_id for message in event_messages(spec, event, idempotency_base=base)]
    with transaction(sessions) as session:
        # A concurrent request with the same key waits here for this one's commit.
        stored = session.scalar(
            insert(IdempotentRequest)
            .values(key=idempotency_key, event=name, request_digest=request_digest, job_ids=job_ids)
            .on_conflict_do_nothing(index_elements=[IdempotentRequest.key])
            .returning(IdempotentRequest.key)
        )
        if stored is None:
            first = session.get(IdempotentRequest, idempotency_key)
            assert first is not None  # the conflict was on this key
            if first.request_digest != request_digest:
                raise IdempotencyConflict(
                    f"Idempotency-Key {idempotency_key!r} was used for another request ({first.event})"
                )
            return Published(name, list(first.job_ids), True)
        # Enqueued inside the transaction: if Redis refuses, the key is not kept and a retry enqueues.
        publish(name, event, broker=broker, idempotency_base=base)
    return Published(name, job_ids, False)


def catalog_schemas() -> dict[str, Any]:
    """The catalog as JSON Schema, per event and version, with each version's subscribers."""
    from nightshift.common.events.catalog import CATALOG

    return {
        name: {
            "versions": {
                str(spec.version): {
                    "description": spec.description,
                    "subscribers": [
                        {"actor": subscriber.contract.actor_name, "queue": subscriber.contract.queue_name}
                        for subscriber in spec.subscribers
                    ],
                    "schema": spec.schema.model_json_schema(),
                }
            }
        }
        for name, spec in sorted(CATALOG.items())
    }
