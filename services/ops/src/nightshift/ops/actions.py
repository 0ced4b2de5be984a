"""Operators' actions, the same from the dashboard, the JSON API and the CLI; each one is audited.

Every function takes who acts (a :class:`~nightshift.ops.accounts.Principal`),
does the change through ``nightshift.common`` and then records it in
``ops_audit``. An id that matches nothing raises before anything changes
(``UnknownJob``, ``UnknownSchedule``), and nothing is audited then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common import dead_letters, schedule_control
from nightshift.common.db.engine import transaction
from nightshift.common.purge import purge_queue
from nightshift.common.revocation import revoke
from nightshift.ops import alert_lifecycle, audit
from nightshift.ops.accounts import Principal

#: Called with how many items were just handled (a progress bar).
Progress = dead_letters.Progress


def _audit(sessions: sessionmaker[Session], who: Principal, action: str, target: str, **detail: Any) -> None:
    audit.record(sessions, who=who.name, via=who.via, action=action, target=target, **detail)


def replay_dead_letters(
    broker: RedisBroker,
    sessions: sessionmaker[Session],
    who: Principal,
    queue: str,
    job_ids: Iterable[str] | None,
    *,
    progress: Progress | None = None,
) -> int:
    """Replay these dead letters of *queue* (every one when *job_ids* is None); return how many.

    Raises:
      UnknownJob: An id matches no dead letter of the queue; nothing is replayed.
    """
    if job_ids is None:
        count = dead_letters.replay_all(broker, queue, progress=progress)
        _audit(sessions, who, "dead_letters.replay_all", queue, count=count)
        return count
    ids = list(job_ids)
    replayed = dead_letters.replay(broker, queue, ids, progress=progress)
    _audit(sessions, who, "dead_letters.replay", queue, job_ids=ids, count=len(replayed))
    return len(replayed)


def delete_dead_letters(
    broker: RedisBroker,
    sessions: sessionmaker[Session],
    who: Principal,
    queue: str,
    job_ids: Iterable[str] | None,
    *,
    progress: Progress | None = None,
) -> int:
    """Delete these dead letters of *queue* (every one when *job_ids* is None); return how many.

    Raises:
      UnknownJob: An id matches no dead letter of the queue; nothing is deleted.
    """
    if job_ids is None:
        count = dead_letters.purge_dead_letters(broker, queue)
        _audit(sessions, who, "dead_letters.purge", queue, count=count)
        return count
    ids = list(job_ids)
    count = dead_letters.delete(broker, queue, ids, progress=progress)
    _audit(sessions, who, "dead_letters.delete", queue, job_ids=ids, count=count)
    return count


def purge(broker: RedisBroker, sessions: sessionmaker[Session], who: Principal, queue: str) -> int:
    """Drop every ready message of *queue* (in-flight, delayed and dead ones stay), their job records
    ending ``purged``; return how many."""
    count = purge_queue(broker, queue, engine=sessions.kw["bind"])
    _audit(sessions, who, "queue.purge", queue, count=count)
    return count


def revoke_job(
    broker: RedisBroker, sessions: sessionmaker[Session], who: Principal, job_id: str, *, terminate: bool
) -> None:
    """Revoke job *job_id*: it never starts; with *terminate*, a running one is aborted.

    Raises:
      UnknownJob: No record, queue or dead letter knows the id.
    """
    engine = sessions.kw["bind"]
    revoke(broker, job_id, terminate=terminate, engine=engine)
    _audit(sessions, who, "job.revoke", job_id, terminate=terminate)


def change_schedule(
    sessions: sessionmaker[Session], who: Principal, name: str, kind: str, *, cron: str | None = None
) -> dict[str, Any]:
    """Pause, resume or re-cron schedule *name* (``kind``: pause, resume, set_cron).

    Raises:
      UnknownSchedule: No schedule has that name.
      ValueError: A malformed cron expression (nothing is saved).
    """
    with transaction(sessions) as session:
        row = schedule_control.change(session, name, kind, by=f"{who.name} ({who.via})", cron=cron)
        change = row.change
    _audit(sessions, who, f"schedule.{kind}", name, **({"cron": cron} if kind == "set_cron" else {}))
    return {"name": name, "change": change}


def run_schedule_now(broker: RedisBroker, sessions: sessionmaker[Session], who: Principal, name: str) -> str:
    """Enqueue schedule *name*'s message now; return its job id.

    Raises:
      UnknownSchedule: No schedule has that name (nothing is enqueued).
    """
    message = schedule_control.run_now(name, broker=broker, sessions=sessions, by=f"{who.name} ({who.via})")
    _audit(sessions, who, "schedule.run_now", name, job_id=message.message_id)
    return message.message_id


def silence_alerts(
    sessions: sessionmaker[Session], who: Principal, key: str, *, duration_s: int, reason: str
) -> dict[str, Any]:
    """Silence the alerts whose key starts with *key* for *duration_s* seconds; return the silence.

    Raises:
      ValueError: An empty key or reason, or a duration that is not positive.
    """
    if duration_s <= 0:
        raise ValueError("duration_s: a silence lasts a positive number of seconds")
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=duration_s)
    result = alert_lifecycle.silence(sessions, key, until=until, reason=reason, by=who.name)
    _audit(sessions, who, "alerts.silence", result["key"], until=result["until"], reason=result["reason"])
    return result


def end_silence(sessions: sessionmaker[Session], who: Principal, silence_id: int) -> dict[str, Any]:
    """End a silence now; return it.

    Raises:
      LookupError: No such silence.
    """
    result = alert_lifecycle.end_silence(sessions, silence_id, dt.datetime.now(dt.UTC))
    _audit(sessions, who, "alerts.end_silence", result["key"], silence_id=silence_id)
    return result
