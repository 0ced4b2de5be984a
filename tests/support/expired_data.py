"""Rows and dead letters past retention, and young ones, for ``purge_expired_data`` (ops)."""

from __future__ import annotations

import datetime as dt

import redis
from sqlalchemy import Engine, text

from nightshift.common.redis_broker import NightshiftRedisBroker
from tests.support.ops_actors import QUEUE

NOW = dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.UTC)  # Monday 08:00 in Paris
OLD = NOW - dt.timedelta(days=400)
YOUNG = NOW - dt.timedelta(hours=1)

#: What a purge at ``NOW`` with the default retentions deletes of :func:`seed_expired_and_young`'s data.
EXPECTED_PURGE = {
    "job_records": 2,  # done and dead; a running job is never purged
    "task_audit": 3,
    "ops_actor_minutes": 1,  # the old audit's minute and hour, once rolled up; the young ones stay
    "ops_actor_hours": 1,
    "outbox_events": 1,  # the sent one; unsent rows wait for the relay
    "processed_keys": 1,
    "email_deliveries": 1,
    "ops_alerts": 1,  # the resolved one; an active alert stays
    "ops_idempotent_requests": 1,
    "ops_maintenance_runs": 0,
    "dead_letters": 3,
}


def seed_expired_and_young(engine: Engine, client: redis.Redis[bytes], broker: NightshiftRedisBroker) -> None:
    """Three of each kind of row past retention (``OLD``) and three young ones; dead letters likewise."""
    with engine.begin() as connection:
        for at, tag in ((OLD, "old"), (YOUNG, "young")):
            for status in ("done", "dead", "running"):
                connection.execute(
                    text(
                        "INSERT INTO job_records (message_id, actor, queue, status, updated_at) "
                        "VALUES (gen_random_uuid(), 'a', 'q', :status, :at)"
                    ),
                    {"status": status, "at": at},
                )
            for _ in range(3):
                connection.execute(
                    text(
                        "INSERT INTO task_audit (message_id, actor, queue, attempt, outcome, started_at, finished_at, "
                        "duration_ms) VALUES (gen_random_uuid(), 'a', 'q', 1, 'done', :at, :at, 1)"
                    ),
                    {"at": at},
                )
            connection.execute(
                text(
                    "INSERT INTO outbox_events (event_name, payload, created_at, sent_at) VALUES ('e', '{}', :at, :at)"
                ),
                {"at": at},
            )
            connection.execute(
                text("INSERT INTO outbox_events (event_name, payload, created_at) VALUES ('unsent', '{}', :at)"),
                {"at": at},
            )
            connection.execute(
                text("INSERT INTO processed_keys (key, processed_at) VALUES (:k, :at)"), {"k": tag, "at": at}
            )
            connection.execute(
                text(
                    "INSERT INTO email_deliveries (idempotency_key, user_id, template, locale, backend, sent_at) "
                    "VALUES (:k, 1, 'welcome', 'en', 'outbox', :at)"
                ),
                {"k": tag, "at": at},
            )
            connection.execute(
                text(
                    "INSERT INTO ops_alerts (key, rule, source, severity, summary, fired_at, last_seen_at, "
                    "resolved_at) VALUES (:k, 'backlog', 'ops', 'warning', 's', :at, :at, :at)"
                ),
                {"k": f"backlog:{tag}", "at": at},
            )
            connection.execute(
                text(
                    "INSERT INTO ops_alerts (key, rule, source, severity, summary) "
                    "VALUES (:k, 'x', 'ops', 'warning', 's')"
                ),
                {"k": f"active:{tag}"},
            )
            connection.execute(
                text(
                    "INSERT INTO ops_idempotent_requests (key, event, request_digest, job_ids, created_at) "
                    "VALUES (:k, 'e', 'd', '{}', :at)"
                ),
                {"k": tag, "at": at},
            )
    keys = broker.keys
    for at, tag in ((OLD, "old"), (YOUNG, "young")):
        for number in range(3):
            letter = f"{tag}-{number}"
            client.zadd(keys.dead(QUEUE), {letter: int(at.timestamp() * 1000)})
            client.hset(keys.dead_messages(QUEUE), letter, "{}")
            client.hset(keys.dead_reasons(QUEUE), letter, "reason")
