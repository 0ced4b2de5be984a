"""What ``nightshift schedule list`` shows about each schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.common.db.models import JobRecord
from nightshift.scheduler.models import ScheduleRow
from nightshift.scheduler.times import FireTimes


def next_fire(row: ScheduleRow, now: dt.datetime) -> dt.datetime | None:
    """When *row* fires next (None while paused)."""
    if row.paused:
        return None
    return FireTimes(row.effective_cron, row.timezone).next_after(max(row.handled_through, now))


def describe_schedules(session: Session, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One dict per schedule: definition, next and last fire, last outcome, last change.

    The last outcome is the status of the last fire's job record (``queued``,
    ``running``, ``done``, ``dead``…).
    """
    now = now or dt.datetime.now(dt.UTC)
    query = (
        select(ScheduleRow, JobRecord.status)
        .outerjoin(JobRecord, JobRecord.message_id == ScheduleRow.last_message_id)
        .order_by(ScheduleRow.name)
    )
    described = []
    for row, outcome in session.execute(query):
        upcoming = next_fire(row, now)
        described.append(
            {
                "name": row.name,
                "actor": row.actor,
                "queue": row.queue,
                "cron": row.effective_cron,
                "declared_cron": row.cron,
                "timezone": row.timezone,
                "misfire": row.misfire,
                "overlap": row.overlap,
                "paused": row.paused,
                "declared": row.declared,
                "next_fire": upcoming.isoformat() if upcoming else None,
                "last_fire_at": row.last_fire_at.isoformat() if row.last_fire_at else None,
                "last_message_id": str(row.last_message_id) if row.last_message_id else None,
                "last_outcome": outcome,
                "changed_by": row.changed_by,
                "changed_at": row.changed_at.isoformat() if row.changed_at else None,
                "change": row.change,
            }
        )
    return described
