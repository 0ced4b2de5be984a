"""``purge_expired_data``: what the platform keeps, and for how long.

Execution traces are personal data's neighbours (a job's arguments hold user ids), so
nothing is kept forever (GDPR: storage limitation). Each kind of data has a retention
in days (``OPS_RETENTION_*_DAYS``, defaults in ``docs/alerts.md``); what is older is
deleted in batches of ``OPS_PURGE_BATCH_SIZE`` rows, each batch its own short
transaction, so the tables the workers write are never locked for long: a batch
deletes rows by ``ctid`` picked with ``LIMIT``, touching only rows nobody writes any
more (finished jobs, sent outbox rows). Dead letters older than their retention are
deleted from Redis the same way, oldest first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.redis_keys import RedisKeys
from nightshift.ops.settings import OpsSettings


@dataclass(frozen=True)
class Target:
    """A table and the rows of it past retention.

    Parameters:
      name: What the operators read (``job_records``).
      table: The table; skipped when it does not exist (a service not installed).
      expired: SQL condition with ``:cutoff`` naming the expired rows.
      order: Optional ``ORDER BY`` of the batch (an index to walk, oldest first).
      days: The retention setting's value.
    """

    name: str
    table: str
    expired: str
    days: int
    order: str = ""


def targets(options: OpsSettings) -> list[Target]:
    """Every table ``purge_expired_data`` cleans, with its retention."""
    return [
        Target(
            "job_records",
            "job_records",
            "status IN ('done', 'dead', 'skipped', 'revoked', 'purged') AND updated_at < :cutoff",
            options.retention_job_records_days,
        ),
        Target("task_audit", "task_audit", "started_at < :cutoff", options.retention_task_audit_days, "started_at"),
        # The audit's rollup lives as long as the audit it sums.
        Target(
            "ops_actor_minutes", "ops_actor_minutes", "minute < :cutoff", options.retention_task_audit_days, "minute"
        ),
        Target(
            "ops_actor_hours",
            "ops_actor_hours",
            "hour < :cutoff - interval '1 hour'",
            options.retention_task_audit_days,
            "hour",
        ),
        Target(
            "outbox_events",
            "outbox_events",
            "sent_at IS NOT NULL AND created_at < :cutoff",
            options.retention_outbox_days,
            "id",
        ),
        Target("processed_keys", "processed_keys", "processed_at < :cutoff", options.retention_processed_keys_days),
        Target("email_deliveries", "email_deliveries", "sent_at < :cutoff", options.retention_delivery_logs_days),
        Target(
            "ops_alerts",
            "ops_alerts",
            "resolved_at IS NOT NULL AND resolved_at < :cutoff",
            options.retention_alerts_days,
        ),
        Target(
            "ops_idempotent_requests",
            "ops_idempotent_requests",
            "created_at < :cutoff",
            options.retention_idempotent_requests_days,
            "created_at",
        ),
        Target("ops_maintenance_runs", "ops_maintenance_runs", "at < :cutoff", options.retention_maintenance_runs_days),
    ]


def purge_table(sessions: sessionmaker[Session], target: Target, *, now: dt.datetime, batch_size: int) -> int:
    """Delete *target*'s expired rows in batches; return how many."""
    with sessions() as session:
        if session.scalar(text("SELECT to_regclass(:table)"), {"table": target.table}) is None:
            return 0
    order = f" ORDER BY {target.order}" if target.order else ""
    statement = text(
        f"DELETE FROM {target.table} WHERE ctid = ANY(ARRAY("  # noqa: S608 - names from the code, not input
        f"SELECT ctid FROM {target.table} WHERE {target.expired}{order} LIMIT :limit))"
    )
    cutoff = now - dt.timedelta(days=target.days)
    total = 0
    while True:
        with transaction(sessions) as session:
            result = session.execute(statement, {"cutoff": cutoff, "limit": batch_size})
            deleted = int(getattr(result, "rowcount", 0))
        total += deleted
        if deleted < batch_size:
            return total


def purge_dead_letters(
    broker: RedisBroker, queues: Iterable[str], *, now: dt.datetime, days: int, batch_size: int
) -> int:
    """Delete the dead letters that died more than *days* ago, oldest first; return how many."""
    keys = RedisKeys(broker.namespace)
    cutoff_ms = int((now - dt.timedelta(days=days)).timestamp() * 1000)
    total = 0
    for queue in queues:
        while True:
            ids = broker.client.zrangebyscore(keys.dead(queue), 0, cutoff_ms, start=0, num=batch_size)
            if not ids:
                break
            with broker.client.pipeline(transaction=True) as pipe:
                pipe.zrem(keys.dead(queue), *ids)
                pipe.hdel(keys.dead_messages(queue), *ids)
                pipe.hdel(keys.dead_reasons(queue), *ids)
                pipe.execute()
            total += len(ids)
            if len(ids) < batch_size:
                break
    return total


def purge_expired_data(
    sessions: sessionmaker[Session],
    broker: RedisBroker,
    queues: Iterable[str],
    options: OpsSettings,
    *,
    now: dt.datetime,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Purge every kind of data past retention; return how many were deleted, by kind."""
    purged: dict[str, int] = {}
    for target in targets(options):
        purged[target.name] = purge_table(sessions, target, now=now, batch_size=options.purge_batch_size)
        if progress is not None:
            progress(target.name, purged[target.name])
    purged["dead_letters"] = purge_dead_letters(
        broker, queues, now=now, days=options.retention_dead_letters_days, batch_size=options.purge_batch_size
    )
    return purged
