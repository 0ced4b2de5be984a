"""Operators' control of the schedules: pause, resume, change the cron, run now, and what is shown.

The scheduler service fires the schedules; operators change them from
``nightshift schedule …`` or the ops dashboard. Both go through these
functions, which write the operator columns of ``schedules`` and one
``schedule_events`` row per change with who made it; the active scheduler reads
the change within ``SCHEDULER_RELOAD_INTERVAL_MS``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import dramatiq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import JobRecord, ScheduleEvent, ScheduleRow
from nightshift.common.fire_times import FireTimes
from nightshift.common.schedules import validate_cron

#: Operators' changes.
CHANGES = ("pause", "resume", "set_cron", "run_now")

#: Namespace of the fires' message ids: uuid5(namespace, "name@iso-time").
FIRE_NAMESPACE = uuid.UUID("6f1c3a52-2d0e-4c55-9a53-6a8d1d5f0c11")

#: The message option naming what triggered a message (kept on its job record).
TRIGGER_PREFIX = "schedule:"


class UnknownSchedule(LookupError):
    """No schedule has that name."""


def fire_message_id(schedule: str, scheduled_for: dt.datetime) -> str:
    """The message id of *schedule*'s fire at *scheduled_for*: the same in every process."""
    moment = scheduled_for.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return str(uuid.uuid5(FIRE_NAMESPACE, f"{schedule}@{moment}"))


def fire_options(name: str, **extra: str) -> dict[str, str]:
    """The options of a message fired for schedule *name*."""
    return {"trigger": TRIGGER_PREFIX + name, **extra}


def get(session: Session, name: str) -> ScheduleRow:
    """The schedule called *name*.

    Raises:
      UnknownSchedule: Naming the schedules that exist.
    """
    row = session.get(ScheduleRow, name)
    if row is None:
        names = ", ".join(session.scalars(select(ScheduleRow.name).order_by(ScheduleRow.name))) or "none"
        raise UnknownSchedule(f"unknown schedule {name!r} (known: {names})")
    return row


def record_event(
    session: Session,
    name: str,
    kind: str,
    *,
    by: str,
    detail: str = "",
    first_fire_at: dt.datetime | None = None,
    last_fire_at: dt.datetime | None = None,
) -> None:
    """Add one ``schedule_events`` row about *name*."""
    session.add(
        ScheduleEvent(
            schedule=name, kind=kind, detail=detail, by=by, first_fire_at=first_fire_at, last_fire_at=last_fire_at
        )
    )


def change(session: Session, name: str, kind: str, *, by: str, cron: str | None = None) -> ScheduleRow:
    """Apply an operator's change to *name* and record who made it.

    Parameters:
      kind: ``pause``, ``resume`` or ``set_cron`` (``run_now`` is :func:`run_now`).
      cron: The new expression for ``set_cron``; None goes back to the declared one.

    Raises:
      UnknownSchedule: When no schedule has that name.
      ValueError: For an unknown change or a malformed cron expression (nothing is saved).
    """
    row = get(session, name)
    now = dt.datetime.now(dt.UTC)
    if kind == "pause":
        row.paused, detail = True, "paused"
    elif kind == "resume":
        row.paused, detail = False, "resumed"
        # Fires due while paused are not misfires: start again from now.
        row.handled_through = max(row.handled_through, now)
    elif kind == "set_cron":
        if cron is not None:
            validate_cron(cron)
        row.cron_override = cron if cron != row.cron else None
        detail = f"cron {row.effective_cron!r}" + ("" if row.cron_override else " (declared)")
        # Fires of the old expression that were not due yet are not misfires of the new one.
        row.handled_through = max(row.handled_through, now)
    else:
        raise ValueError(f"unknown change {kind!r} (one of {', '.join(CHANGES[:3])})")
    row.changed_by, row.changed_at, row.change = by, now, detail
    row.updated_at = now
    record_event(session, name, kind, by=by, detail=detail)
    return row


def record_run_now(session: Session, name: str, *, message_id: str, by: str) -> None:
    """Record that an operator ran *name* now as *message_id* (the overlap policy sees it)."""
    now = dt.datetime.now(dt.UTC)
    row = get(session, name)
    row.last_message_id, row.last_enqueued_at = uuid.UUID(message_id), now
    row.changed_by, row.changed_at, row.change = by, now, f"ran now ({message_id})"
    row.updated_at = now
    record_event(session, name, "run_now", by=by, detail=message_id)


def run_now(name: str, *, broker: dramatiq.Broker, sessions: sessionmaker[Session], by: str) -> dramatiq.Message[Any]:
    """Enqueue one message of schedule *name* now, besides its regular fires, and record who asked.

    The message is built from the schedule's row (actor, queue and the payload the
    scheduler validated against the contract when it wrote the declaration).

    Returns:
      The enqueued message (its id is the job id).

    Raises:
      UnknownSchedule: When no schedule has that name (nothing is enqueued).
    """
    with transaction(sessions) as session:
        row = get(session, name)
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=row.queue,
            actor_name=row.actor,
            args=(),
            kwargs=dict(row.payload),
            options=fire_options(name, run_by=by),
            message_id=fire_message_id(f"{name}@manual", dt.datetime.now(dt.UTC)),
        )
    broker.enqueue(message)
    with transaction(sessions) as session:
        record_run_now(session, name, message_id=message.message_id, by=by)
    return message


def events(session: Session, name: str, *, limit: int = 20) -> list[ScheduleEvent]:
    """*name*'s latest events, newest first."""
    query = (
        select(ScheduleEvent)
        .where(ScheduleEvent.schedule == name)
        .order_by(ScheduleEvent.at.desc(), ScheduleEvent.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


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
                "description": row.description,
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
