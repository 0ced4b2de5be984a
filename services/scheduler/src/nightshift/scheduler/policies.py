"""Which due fires run: the misfire and overlap policies, as plain functions.

Everything here is pure (times in, decisions out) so each policy is tested on
its own; :mod:`nightshift.scheduler.loop` applies the decisions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from nightshift.common.schedules import MisfirePolicy, OverlapPolicy

#: Statuses of a job record that mean the previous run is not finished.
UNFINISHED_STATUSES = frozenset({"queued", "running", "retrying"})

#: A fire we enqueued but whose job record is not written yet counts as queued for this long
#: (records are written in batches); after that a missing record (purged) counts as finished.
MISSING_RECORD_GRACE = dt.timedelta(seconds=60)


class Times(Protocol):
    """A schedule's fire times (:class:`nightshift.common.fire_times.FireTimes`)."""

    def next_after(self, after: dt.datetime) -> dt.datetime | None: ...

    def between(self, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]: ...


@dataclass(frozen=True)
class FirePlan:
    """What to do with the fires that fell due.

    Parameters:
      run: Scheduled times to enqueue, oldest first.
      skipped: Missed scheduled times the policy drops, oldest first.
      skipped_before: Set when fires older than every window were dropped without being
        listed (a long outage): everything after the cursor up to this time.
      handled_through: The new cursor: every fire up to here is decided.
    """

    run: list[dt.datetime] = field(default_factory=list)
    skipped: list[dt.datetime] = field(default_factory=list)
    skipped_before: dt.datetime | None = None
    handled_through: dt.datetime | None = None


def plan_fires(
    times: Times,
    *,
    cursor: dt.datetime,
    now: dt.datetime,
    misfire: MisfirePolicy,
    grace: dt.timedelta,
    catch_up_window: dt.timedelta,
    tolerance: dt.timedelta,
) -> FirePlan:
    """Decide the fires in (*cursor*, *now*].

    A fire late by at most *tolerance* is on time and always runs. Later ones were
    missed (downtime, failover) and follow *misfire*:

    * ``skip`` drops them;
    * ``coalesce`` runs them once: not at all when an on-time fire runs anyway,
      otherwise the latest one if it is late by at most *grace*;
    * ``catch_up`` runs each one late by at most *catch_up_window*.

    Parameters:
      times: The schedule's fire times.
      cursor: Every fire up to here was already decided.
      now: The current instant.

    Returns:
      The plan; ``handled_through`` is None when nothing fell due.
    """
    horizon = now - max(grace, catch_up_window, tolerance)
    skipped_before = None
    start = cursor
    if cursor < horizon:
        # Nothing older than every window can run: don't enumerate a long outage.
        start = horizon
        first = times.next_after(cursor)
        if first is not None and first <= horizon:
            skipped_before = horizon
    due = times.between(start, now)
    if not due:
        return FirePlan(skipped_before=skipped_before, handled_through=skipped_before)
    on_time = [t for t in due if now - t <= tolerance]
    missed = [t for t in due if now - t > tolerance]
    if misfire == "catch_up":
        late_ok = [t for t in missed if now - t <= catch_up_window]
    elif misfire == "coalesce" and missed and not on_time and now - missed[-1] <= grace:
        late_ok = [missed[-1]]
    else:
        late_ok = []
    return FirePlan(
        run=late_ok + on_time,
        skipped=[t for t in missed if t not in late_ok],
        skipped_before=skipped_before,
        handled_through=due[-1],
    )


def overlaps(
    policy: OverlapPolicy,
    *,
    previous_status: str | None,
    previous_enqueued_at: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Whether a fire must be skipped because the previous run is not finished.

    Parameters:
      policy: ``allow`` never skips; ``skip`` skips while the previous run is unfinished.
      previous_status: The job record's status of the schedule's previous run (None: no record).
      previous_enqueued_at: When the previous run was enqueued (None: never ran).
    """
    if policy == "allow" or previous_enqueued_at is None:
        return False
    if previous_status is None:
        return now - previous_enqueued_at <= MISSING_RECORD_GRACE
    return previous_status in UNFINISHED_STATUSES
