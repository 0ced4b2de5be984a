"""The maintenance jobs as the actors run them: do the work, record the run, raise what failed.

Every run is a row of ``ops_maintenance_runs`` (``kind``, when, ok, result), keyed by
the message that asked for it, so a redelivered message records nothing twice; the
dashboard's Maintenance page and the JSON API read them back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.ops import DELIVER_ALERT_NOTICE
from nightshift.common.db.engine import transaction
from nightshift.common.settings import CommonSettings
from nightshift.common.storage import Storage
from nightshift.ops import actor_rollup, alert_lifecycle, cache_stats, dependencies, retention
from nightshift.ops.models import MaintenanceRun
from nightshift.ops.settings import OpsSettings


def record_run(
    sessions: sessionmaker[Session], kind: str, result: dict[str, Any], *, ok: bool = True, run_key: str | None = None
) -> bool:
    """Store one run; False when a run with *run_key* was recorded already."""
    with transaction(sessions) as session:
        statement = (
            insert(MaintenanceRun)
            .values(kind=kind, run_key=run_key or f"{kind}:{uuid.uuid4()}", ok=ok, result=result)
            .on_conflict_do_nothing(index_elements=["run_key"])
            .returning(MaintenanceRun.id)
        )
        return session.scalar(statement) is not None


def last_run(session: Session, kind: str) -> MaintenanceRun | None:
    """The newest run of *kind*."""
    query = select(MaintenanceRun).where(MaintenanceRun.kind == kind).order_by(MaintenanceRun.at.desc()).limit(1)
    return session.scalar(query)


def runs(session: Session, kind: str, *, limit: int = 48) -> list[dict[str, Any]]:
    """The newest runs of *kind*, newest first."""
    query = select(MaintenanceRun).where(MaintenanceRun.kind == kind).order_by(MaintenanceRun.at.desc()).limit(limit)
    return [{"at": row.at.isoformat(), "ok": row.ok, "result": row.result} for row in session.scalars(query)]


def collect_cache_stats(
    sessions: sessionmaker[Session], client: redis.Redis[bytes], options: OpsSettings, *, run_key: str | None = None
) -> dict[str, Any]:
    """Collect the cache's statistics (see ``cache_stats``) and store them as a point of the series."""
    with sessions() as session:
        previous = last_run(session, "cache_stats")
    before = previous.result if previous else None
    result = cache_stats.collect(client, sample=options.cache_sample_keys, previous=before)
    record_run(sessions, "cache_stats", result, run_key=run_key)
    return result


def purge_expired_data(
    sessions: sessionmaker[Session],
    broker: RedisBroker,
    queues: Iterable[str],
    options: OpsSettings,
    *,
    now: dt.datetime | None = None,
    run_key: str | None = None,
) -> dict[str, int]:
    """Purge what is past retention (see ``retention``) and record how much, by kind."""
    now = now or dt.datetime.now(dt.UTC)
    purged = retention.purge_expired_data(sessions, broker, queues, options, now=now)
    record_run(sessions, "purge", {"purged": purged, "total": sum(purged.values())}, run_key=run_key)
    return purged


def roll_up_actor_stats(
    sessions: sessionmaker[Session], options: OpsSettings, *, run_key: str | None = None
) -> dict[str, Any]:
    """Roll the audit rows recorded since the last run up into per-minute actor statistics
    (see ``actor_rollup``); record the run when it read anything."""
    result = actor_rollup.roll_up(sessions, batch_size=options.rollup_batch_size)
    if result["rows"]:
        record_run(sessions, "actor_rollup", result, run_key=run_key)
    return result


def check_dependencies(
    sessions: sessionmaker[Session],
    broker: dramatiq.Broker,
    broker_client: redis.Redis[bytes],
    app_client: redis.Redis[bytes],
    storage: Storage,
    settings: CommonSettings,
    options: OpsSettings,
    *,
    now: dt.datetime | None = None,
    run_key: str | None = None,
) -> list[dependencies.Check]:
    """Probe every dependency, record the results, fire or resolve the ``dependency`` alerts."""
    now = now or dt.datetime.now(dt.UTC)
    checks = dependencies.check_all(sessions, broker_client, app_client, storage, settings, options)
    ok = all(check.ok for check in checks)
    record_run(sessions, "dependencies", {"checks": [check.as_dict() for check in checks]}, ok=ok, run_key=run_key)
    conditions = [condition for check in checks if (condition := check.condition()) is not None]
    transitions = alert_lifecycle.apply(sessions, conditions, rules=["dependency"], now=now)
    for notice_id in transitions.notices:
        DELIVER_ALERT_NOTICE.send({"notice_id": notice_id}, broker=broker)
    return checks
