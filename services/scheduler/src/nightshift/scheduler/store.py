"""The schedules in PostgreSQL: the code's declarations, operators' changes, firing state.

The active scheduler writes declarations (:func:`sync_declared`) and firing state
(:func:`advance`, fenced by its token); operators' changes (``nightshift
schedule …``, the ops dashboard) are written by
:mod:`nightshift.common.schedule_control`. Both record what they did in
``schedule_events``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from nightshift.common.db.models import JobRecord, ScheduleRow
from nightshift.common.schedules import Schedule


def sync_declared(
    session: Session,
    schedules: Mapping[str, Schedule],
    *,
    default_timezone: str,
    now: dt.datetime,
    only_new: bool = False,
) -> None:
    """Write what the code declares; keep operators' changes and firing state.

    A new schedule starts at *now* (nothing before it counts as missed); a schedule
    no longer in the code stays, marked undeclared, with its history.

    Parameters:
      only_new: Add missing schedules only, leaving existing rows as they are (the CLI
        does this, so an operator can pause a schedule before any scheduler ran).
    """
    for schedule in schedules.values():
        declared = {
            "actor": schedule.contract.actor_name,
            "queue": schedule.contract.queue_name,
            "payload": dict(schedule.contract.parse(schedule.payload).model_dump(mode="json")),
            "cron": schedule.cron,
            "timezone": schedule.timezone or default_timezone,
            "misfire": schedule.misfire,
            "grace_s": int(schedule.grace.total_seconds()),
            "catch_up_window_s": int(schedule.catch_up_window.total_seconds()),
            "overlap": schedule.overlap,
            "description": schedule.description,
            "declared": True,
        }
        statement = insert(ScheduleRow).values(name=schedule.name, handled_through=now, **declared)
        if only_new:
            session.execute(statement.on_conflict_do_nothing(index_elements=[ScheduleRow.name]))
            continue
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[ScheduleRow.name],
                set_={**declared, "updated_at": func.now()},
                where=_differs(statement.excluded, declared),
            )
        )
    if only_new:
        return
    session.execute(
        update(ScheduleRow)
        .where(ScheduleRow.name.not_in(list(schedules)), ScheduleRow.declared.is_(True))
        .values(declared=False, updated_at=func.now())
    )


def _differs(excluded: Any, declared: Mapping[str, object]) -> ColumnElement[bool]:
    """``WHERE`` of the upsert: only touch rows whose declaration changed."""
    columns = ScheduleRow.__table__.c
    return or_(*(columns[name].is_distinct_from(getattr(excluded, name)) for name in declared))


def load(session: Session) -> list[ScheduleRow]:
    """Every schedule, by name."""
    return list(session.scalars(select(ScheduleRow).order_by(ScheduleRow.name)))


@dataclass(frozen=True)
class Fired:
    """The last fire enqueued for a schedule."""

    scheduled_for: dt.datetime
    message_id: str
    enqueued_at: dt.datetime


def advance(session: Session, name: str, *, token: int, handled_through: dt.datetime, fired: Fired | None) -> bool:
    """Move *name*'s cursor (and last fire) forward under fencing *token*.

    Returns:
      False when a scheduler with a newer token has written since: this one must stand down.
    """
    values: dict[str, object] = {
        "handled_through": func.greatest(ScheduleRow.handled_through, handled_through),
        "fencing_token": token,
    }
    if fired is not None:
        values.update(
            last_fire_at=fired.scheduled_for,
            last_message_id=uuid.UUID(fired.message_id),
            last_enqueued_at=fired.enqueued_at,
        )
    result = session.execute(
        update(ScheduleRow).where(ScheduleRow.name == name, ScheduleRow.fencing_token <= token).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def job_status(session: Session, message_id: uuid.UUID | str | None) -> str | None:
    """The job record's status of *message_id* (None when there is no record)."""
    if message_id is None:
        return None
    key = message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(message_id)
    return session.scalar(select(JobRecord.status).where(JobRecord.message_id == key))
