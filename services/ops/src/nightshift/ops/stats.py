"""Throughput, outcomes and durations from the audit trail (``task_audit``), set-based in SQL.

Every query reads one time window through ``ix_task_audit_started_at`` or
``ix_task_audit_actor_started``, so its cost follows the traffic in the window,
not the size of the history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

#: Outcomes that count as a failure of an attempt.
FAILED = ("retrying", "dead")

#: Windows the actors page offers, in minutes.
WINDOWS_MIN = (60, 360, 1440)

_PER_MINUTE = text(
    """
    WITH bounds AS (SELECT date_trunc('minute', now()) - make_interval(mins => :minutes - 1) AS first),
    counts AS (
        SELECT date_trunc('minute', started_at) AS minute,
               count(*) FILTER (WHERE outcome IN ('done', 'skipped')) AS processed,
               count(*) FILTER (WHERE outcome IN ('retrying', 'dead')) AS failed
        FROM task_audit, bounds
        WHERE started_at >= bounds.first
        GROUP BY 1
    )
    SELECT m.minute, COALESCE(c.processed, 0), COALESCE(c.failed, 0)
    FROM bounds, generate_series(bounds.first, date_trunc('minute', now()), interval '1 minute') AS m(minute)
    LEFT JOIN counts c ON c.minute = m.minute
    ORDER BY m.minute
    """
)

_PER_ACTOR = text(
    """
    SELECT actor,
           count(*) AS attempts,
           count(*) FILTER (WHERE outcome IN ('done', 'skipped')) AS succeeded,
           count(*) FILTER (WHERE outcome IN ('retrying', 'dead')) AS failed,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS percentiles
    FROM task_audit
    WHERE started_at >= now() - make_interval(mins => :minutes)
    GROUP BY actor ORDER BY actor
    """
)

_ACTOR_SERIES = text(
    """
    SELECT date_bin(make_interval(mins => :bucket), started_at, timestamptz '2000-01-01') AS at,
           count(*) AS attempts,
           count(*) FILTER (WHERE outcome IN ('retrying', 'dead')) AS failed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
    FROM task_audit
    WHERE actor = :actor AND started_at >= now() - make_interval(mins => :minutes)
    GROUP BY 1 ORDER BY 1
    """
)


def per_minute(session: Session, *, minutes: int = 60) -> list[dict[str, Any]]:
    """Attempts that succeeded (``processed``) and failed, per minute over the last *minutes*."""
    rows = session.execute(_PER_MINUTE, {"minutes": minutes})
    return [{"minute": _iso(minute), "processed": processed, "failed": failed} for minute, processed, failed in rows]


def per_actor(session: Session, *, minutes: int = 60) -> list[dict[str, Any]]:
    """Per actor over the last *minutes*: attempts, success and failure rates, p50/p95/p99 duration."""
    described = []
    for actor, attempts, succeeded, failed, percentiles in session.execute(_PER_ACTOR, {"minutes": minutes}):
        p50, p95, p99 = (round(value, 3) for value in percentiles)
        described.append(
            {
                "actor": actor,
                "attempts": attempts,
                "per_minute": round(attempts / minutes, 3),
                "success_rate": round(succeeded / attempts, 4),
                "failure_rate": round(failed / attempts, 4),
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
            }
        )
    return described


def actor_series(session: Session, actor: str, *, minutes: int = 60) -> list[dict[str, Any]]:
    """*actor*'s attempts, failures and p50/p95 duration over time (60 buckets over *minutes*)."""
    bucket = max(minutes // 60, 1)
    rows = session.execute(_ACTOR_SERIES, {"actor": actor, "minutes": minutes, "bucket": bucket})
    return [
        {"at": _iso(at), "attempts": attempts, "failed": failed, "p50_ms": round(p50, 3), "p95_ms": round(p95, 3)}
        for at, attempts, failed, p50, p95 in rows
    ]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()
