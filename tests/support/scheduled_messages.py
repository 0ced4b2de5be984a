"""Reading the messages the scheduler enqueued, straight from the broker's Redis."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass

import redis

from nightshift.common.redis_keys import RedisKeys


@dataclass(frozen=True)
class ScheduledMessage:
    message_id: str
    schedule: str
    scheduled_for: dt.datetime
    #: When the message was built, just before it was enqueued.
    created_at: dt.datetime


def scheduled_messages(client: redis.Redis[bytes], queue: str) -> list[ScheduledMessage]:
    """Every message waiting in *queue* (the broker's ``<queue>.msgs`` hash), oldest fire first."""
    found = []
    for body in client.hvals(RedisKeys().messages(queue)):
        data = json.loads(body)
        options = data["options"]
        found.append(
            ScheduledMessage(
                message_id=data["message_id"],
                schedule=options["trigger"].removeprefix("schedule:"),
                scheduled_for=dt.datetime.fromisoformat(options["scheduled_for"]),
                created_at=dt.datetime.fromtimestamp(data["message_timestamp"] / 1000, dt.UTC),
            )
        )
    return sorted(found, key=lambda m: (m.schedule, m.scheduled_for))


def queue_length(client: redis.Redis[bytes], queue: str) -> int:
    """How many message ids wait in *queue* (the broker's list, one entry per enqueue)."""
    return int(client.llen(RedisKeys().queue(queue)))


def by_schedule(messages: list[ScheduledMessage]) -> dict[str, list[ScheduledMessage]]:
    grouped: dict[str, list[ScheduledMessage]] = defaultdict(list)
    for message in messages:
        grouped[message.schedule].append(message)
    return dict(grouped)
