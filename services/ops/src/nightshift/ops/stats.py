"""Throughput, outcomes and durations from the audit trail (``task_audit``), set-based in SQL.

Every query reads one time window through ``ix_task_audit_started_at`` or
``ix_task_audit_actor_started``, so its cost follows the traffic in the window,
not the size of the history. The actors' table (:func:`per_actor`) reads the
per-minute rollup (``actor_rollup``) and only the raw rows not rolled up yet, so
its cost follows the minutes in the window, not the attempts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from nightshift.ops import actor_rollup, histogram
from nightshift.ops.histogram import SQL_BUCKET

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

#: Per actor over a window: the rolled hours and minutes (``ops_actor_hours`` for the whole
#: hours in it, ``ops_actor_minutes`` for its ragged ends) plus the raw rows
#: above the rollup's progress (the tail), as totals and one merged sparse histogram.
_PER_ACTOR = text(
    f"""
    WITH tail AS (
        SELECT actor, outcome, duration_ms, {SQL_BUCKET} AS bucket
        FROM task_audit WHERE id > :through AND started_at >= :first
    ),
    rolled AS (
        SELECT actor, attempts, succeeded, failed, min_ms, max_ms, buckets, counts
        FROM ops_actor_hours WHERE hour >= :first_hour AND hour < :last_hour
        UNION ALL
        SELECT actor, attempts, succeeded, failed, min_ms, max_ms, buckets, counts
        FROM ops_actor_minutes WHERE minute >= :first AND (minute < :first_hour OR minute >= :last_hour)
    ),
    totals AS (
        SELECT actor, sum(attempts) AS attempts, sum(succeeded) AS succeeded, sum(failed) AS failed,
               min(min_ms) AS min_ms, max(max_ms) AS max_ms
        FROM (
            SELECT actor, attempts, succeeded, failed, min_ms, max_ms FROM rolled
            UNION ALL
            SELECT actor, 1, (outcome IN ('done', 'skipped'))::int, (outcome IN ('retrying', 'dead'))::int,
                   duration_ms, duration_ms
            FROM tail
        ) AS both_parts
        GROUP BY actor
    ),
    histogram AS (
        SELECT actor, bucket, sum(n) AS n
        FROM (
            SELECT actor, b.bucket, b.n FROM rolled, unnest(buckets, counts) AS b(bucket, n)
            UNION ALL
            SELECT actor, bucket, 1 FROM tail
        ) AS both_parts
        GROUP BY actor, bucket
    )
    SELECT t.actor, t.attempts, t.succeeded, t.failed, t.min_ms, t.max_ms,
           array_agg(h.bucket ORDER BY h.bucket), array_agg(h.n ORDER BY h.bucket)
    FROM totals AS t JOIN histogram AS h USING (actor)
    GROUP BY t.actor, t.attempts, t.succeeded, t.failed, t.min_ms, t.max_ms
    ORDER BY t.actor
    """  # noqa: S608 - constants only
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


def window_start(now: dt.datetime, minutes: int) -> dt.datetime:
    """The first minute of a window of *minutes* ending at *now* (the current minute is its last)."""
    return now.replace(second=0, microsecond=0) - dt.timedelta(minutes=minutes - 1)


def per_actor(session: Session, *, minutes: int = 60, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per actor over the last *minutes*: attempts, success and failure rates, p50/p95/p99 duration.

    The window is whole minutes, the current one included. The counts are exact; the
    percentiles are estimated from the duration histograms (``histogram``: within
    ``RELATIVE_ERROR`` of the exact value). *session* must not have begun a transaction:
    the progress and the rows are read in one snapshot (repeatable read), so an
    attempt is counted once, whether rolled up yet or not.

    Raises:
      ValueError: *session* has begun a transaction already.
    """
    if session.in_transaction():
        raise ValueError("per_actor reads in a snapshot of its own: pass a session that has not begun a transaction")
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    now = (now or session.scalar(text("SELECT now()"))).astimezone(dt.UTC)
    first = window_start(now, minutes)
    first_hour, last_hour = _whole_hours(first, now)
    params = {
        "through": actor_rollup.progress(session),
        "first": first,
        "first_hour": first_hour,
        "last_hour": last_hour,
    }
    described = []
    for actor, attempts, succeeded, failed, low, high, buckets, counts in session.execute(_PER_ACTOR, params):
        p50, p95, p99 = (
            round(value, 3)
            for value in histogram.percentiles(
                histogram.merge([(buckets, counts)]), (0.5, 0.95, 0.99), minimum=low, maximum=high
            )
        )
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


def _whole_hours(first: dt.datetime, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The whole hours between *first* and *now* as [start, end); empty (both *first*) when there are none."""
    start = first.replace(minute=0, second=0, microsecond=0)
    if start < first:
        start += dt.timedelta(hours=1)
    end = now.replace(minute=0, second=0, microsecond=0)
    return (start, end) if start < end else (first, first)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()
