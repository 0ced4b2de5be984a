"""Operators' actions that enqueue: running a schedule now, besides its regular fires (``nightshift schedule run``)."""

from __future__ import annotations

import datetime as dt

import dramatiq
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.schedules import Schedule
from nightshift.scheduler import store
from nightshift.scheduler.claims import fire_message_id

#: The message option naming what triggered a message (kept on its job record).
TRIGGER_PREFIX = "schedule:"


def fire_options(name: str, **extra: str) -> dict[str, str]:
    """The options of a message fired for schedule *name*."""
    return {"trigger": TRIGGER_PREFIX + name, **extra}


def run_now(
    schedule: Schedule, *, broker: dramatiq.Broker, sessions: sessionmaker[Session], by: str
) -> dramatiq.Message[object]:
    """Enqueue one message of *schedule* now, besides its regular fires, and record who asked.

    Returns:
      The enqueued message (its id is the job id).
    """
    message_id = fire_message_id(f"{schedule.name}@manual", dt.datetime.now(dt.UTC))
    message = schedule.contract.message(
        schedule.payload, message_id=message_id, options=fire_options(schedule.name, run_by=by)
    )
    broker.enqueue(message)
    with transaction(sessions) as session:
        store.record_run_now(session, schedule.name, message_id=message_id, by=by)
    return message
