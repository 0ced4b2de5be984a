"""``roll_up_actor_stats``: the audit trail summed per actor and minute (and hour), for the Actors page.

``ops_actor_minutes`` holds, per actor and minute its attempts *started* in, the
attempts, successes, failures, sum, minimum and maximum of the durations and their
histogram (``histogram``). ``ops_rollup_progress`` says how far it is complete: every
``task_audit`` row with ``id <= through_id`` is counted in it, none above. A reader
adds the rows above ``through_id`` (the tail, a minute or two of traffic) to the
rolled minutes and double-counts nothing.

A run reads the rows added since the last one in ``id`` order (the primary key: no
scan of the history), ``batch_size`` at a time, and re-rolls every minute a batch
touched from ``task_audit`` by time range (``ix_task_audit_started_at``; neighbouring
minutes as one range, :func:`spans`), replacing the minute's rows: re-rolling is
idempotent, and an attempt recorded long after it started (a slow task) lands in its
own minute. Each batch is its own short
transaction holding a lock on the progress row only; the tables the workers write are
only read. After downtime a run catches up batch by batch from where the last stopped.

An attempt is recorded by one short transaction, but ids are drawn before commit: a
row may become visible after a higher id was rolled. The next run therefore reads
again from where the previous run began (at most ``RESCAN_MAX_IDS`` ids back) and so
counts such a row a minute later.

``ops_actor_hours`` sums the minutes per hour (re-summed, in the same transaction,
whenever one of its minutes is re-rolled): a day's window reads 24 rows per actor
instead of 1,440.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.ops.histogram import SQL_BUCKET

#: The progress row of this rollup in ``ops_rollup_progress``.
NAME = "actor_minutes"

#: The next run reads again at most this many ids below where this one stopped (see above).
RESCAN_MAX_IDS = 10_000

#: Touched minutes closer than this are re-rolled as one time range.
SPAN_GAP = dt.timedelta(hours=1)

_MINUTE = dt.timedelta(minutes=1)
_HOUR = dt.timedelta(hours=1)

#: Origin of the minute buckets (``date_bin``), so a minute does not depend on the session's time zone.
ORIGIN = "timestamptz '2000-01-01 00:00:00+00'"

_BATCH = text(
    f"""
    SELECT max(id), count(*), array_agg(DISTINCT date_bin('1 minute', started_at, {ORIGIN}))
    FROM (SELECT id, started_at FROM task_audit WHERE id > :after ORDER BY id LIMIT :limit) AS batch
    """  # noqa: S608 - constants only
)

_DELETE = text("DELETE FROM ops_actor_minutes WHERE minute >= :lo AND minute < :hi")

#: The minutes of [:lo, :hi) summed again from ``task_audit`` (one index range scan).
_REROLL = text(
    f"""
    INSERT INTO ops_actor_minutes (actor, minute, attempts, succeeded, failed, duration_sum_ms, min_ms, max_ms,
                                   buckets, counts)
    SELECT actor, minute, sum(n), sum(succeeded), sum(failed), sum(total_ms), min(min_ms), max(max_ms),
           array_agg(bucket ORDER BY bucket), array_agg(n ORDER BY bucket)
    FROM (
        SELECT actor, date_bin('1 minute', started_at, {ORIGIN}) AS minute, {SQL_BUCKET} AS bucket, count(*) AS n,
               count(*) FILTER (WHERE outcome IN ('done', 'skipped')) AS succeeded,
               count(*) FILTER (WHERE outcome IN ('retrying', 'dead')) AS failed,
               sum(duration_ms) AS total_ms, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms
        FROM task_audit
        WHERE started_at >= :lo AND started_at < :hi AND id <= :through
        GROUP BY 1, 2, 3
    ) AS per_bucket
    GROUP BY actor, minute
    """  # noqa: S608 - constants only
)

_DELETE_HOURS = text("DELETE FROM ops_actor_hours WHERE hour >= :lo AND hour < :hi")

#: The hours of [:lo, :hi) summed again from their minutes.
_REROLL_HOURS = text(
    f"""
    WITH minutes AS (
        SELECT date_bin('1 hour', minute, {ORIGIN}) AS hour, actor, attempts, succeeded, failed, duration_sum_ms,
               min_ms, max_ms, buckets, counts
        FROM ops_actor_minutes WHERE minute >= :lo AND minute < :hi
    ),
    totals AS (
        SELECT actor, hour, sum(attempts) AS attempts, sum(succeeded) AS succeeded, sum(failed) AS failed,
               sum(duration_sum_ms) AS total_ms, min(min_ms) AS min_ms, max(max_ms) AS max_ms
        FROM minutes GROUP BY actor, hour
    ),
    histograms AS (
        SELECT actor, hour, array_agg(bucket ORDER BY bucket) AS buckets, array_agg(n ORDER BY bucket) AS counts
        FROM (
            SELECT actor, hour, b.bucket, sum(b.n) AS n
            FROM minutes, unnest(buckets, counts) AS b(bucket, n)
            GROUP BY 1, 2, 3
        ) AS per_bucket
        GROUP BY actor, hour
    )
    INSERT INTO ops_actor_hours (actor, hour, attempts, succeeded, failed, duration_sum_ms, min_ms, max_ms,
                                 buckets, counts)
    SELECT t.actor, t.hour, t.attempts, t.succeeded, t.failed, t.total_ms, t.min_ms, t.max_ms, h.buckets, h.counts
    FROM totals AS t JOIN histograms AS h USING (actor, hour)
    """  # noqa: S608 - constants only
)

_ADVANCE = text("UPDATE ops_rollup_progress SET through_id = :through, updated_at = now() WHERE name = :name")

_RESCAN_FROM = text("UPDATE ops_rollup_progress SET rescan_from_id = :rescan_from WHERE name = :name")


def roll_up(sessions: sessionmaker[Session], *, batch_size: int, max_batches: int | None = None) -> dict[str, Any]:
    """Bring ``ops_actor_minutes`` up to date with ``task_audit``; say what was done.

    Parameters:
      sessions: The database.
      batch_size: Audit rows read per batch (each batch one transaction).
      max_batches: Stop after this many batches (the next run goes on); none: until caught up.

    Returns:
      ``rows`` read, ``minutes`` re-rolled, ``batches``, ``through_id`` reached and
      ``caught_up`` (false when *max_batches* stopped it early).

    Raises:
      ValueError: *batch_size* or *max_batches* is not positive.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be positive, not {max_batches}")
    with transaction(sessions) as session:
        began_through, position = _lock(session)
    rows = minutes = batches = 0
    through = began_through
    caught_up = True
    while True:
        if max_batches is not None and batches >= max_batches:
            caught_up = False
            break
        with transaction(sessions) as session:
            through, _ = _lock(session)
            last_id, read, touched = session.execute(_BATCH, {"after": position, "limit": batch_size}).one()
            if last_id is None:
                break
            # Re-rolled minutes count every row up to the furthest id rolled, never fewer (a rescan
            # goes back over rows already counted; the readers take the rows above as the tail).
            through = max(through, last_id)
            for lo, hi in spans(touched):
                session.execute(_DELETE, {"lo": lo, "hi": hi})
                session.execute(_REROLL, {"lo": lo, "hi": hi, "through": through})
                hours = {"lo": _hour(lo), "hi": _hour(hi - _MINUTE) + _HOUR}
                session.execute(_DELETE_HOURS, hours)
                session.execute(_REROLL_HOURS, hours)
            session.execute(_ADVANCE, {"through": through, "name": NAME})
        rows += read
        minutes += len(touched)
        batches += 1
        position = last_id
    with transaction(sessions) as session:
        rescan_from = max(began_through, through - RESCAN_MAX_IDS)
        session.execute(_RESCAN_FROM, {"rescan_from": rescan_from, "name": NAME})
    return {"rows": rows, "minutes": minutes, "batches": batches, "through_id": through, "caught_up": caught_up}


def spans(minutes: Iterable[dt.datetime]) -> list[tuple[dt.datetime, dt.datetime]]:
    """*minutes* as time ranges [start, end) to re-roll, those less than ``SPAN_GAP`` apart joined.

    A range is one index range scan with bounds the planner can weigh; the minutes in a
    gap that had no new row are re-rolled too, and come out the same.
    """
    found: list[tuple[dt.datetime, dt.datetime]] = []
    for minute in sorted(moment.astimezone(dt.UTC) for moment in minutes):
        if found and minute - found[-1][1] < SPAN_GAP:
            found[-1] = (found[-1][0], minute + _MINUTE)
        else:
            found.append((minute, minute + _MINUTE))
    return found


def progress(session: Session) -> int:
    """The id of the last ``task_audit`` row counted in the rollup (0: none yet)."""
    through = session.scalar(text("SELECT through_id FROM ops_rollup_progress WHERE name = :name"), {"name": NAME})
    return int(through or 0)


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _lock(session: Session) -> tuple[int, int]:
    """Lock the progress row (made if missing); its ``through_id`` and ``rescan_from_id``."""
    session.execute(
        text("INSERT INTO ops_rollup_progress (name) VALUES (:name) ON CONFLICT (name) DO NOTHING"), {"name": NAME}
    )
    row = session.execute(
        text("SELECT through_id, rescan_from_id FROM ops_rollup_progress WHERE name = :name FOR UPDATE"),
        {"name": NAME},
    ).one()
    return int(row[0]), int(row[1])
