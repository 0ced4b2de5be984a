"""The data behind every page, as JSON-ready dicts: the JSON API returns them, the pages render them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from nightshift.common import schedule_control
from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.queue_stats import QueueStats, backlog, queue_stats
from nightshift.common.workers import live_workers, running_jobs
from nightshift.ops import audit, jobs, stats
from nightshift.ops.broker_view import delayed_messages, ready_messages
from nightshift.ops.context import OpsContext

#: Schedules listed under "next fires" on the overview.
NEXT_FIRES = 8


class UnknownQueue(LookupError):
    """A queue no installed service declares."""


def _queue(ctx: OpsContext, queue: str) -> str:
    if queue not in ctx.queues:
        raise UnknownQueue(f"unknown queue {queue!r} (known: {', '.join(ctx.queues) or 'none'})")
    return queue


def queue_row(item: QueueStats) -> dict[str, Any]:
    """One queue's numbers."""
    return {
        "queue": item.queue,
        "ready": item.ready,
        "in_flight": item.in_flight,
        "delayed": item.delayed,
        "dead": item.dead,
        "oldest_age_s": None if item.oldest_age_s is None else round(item.oldest_age_s, 3),
        "backlog": backlog(item),
    }


def queues(ctx: OpsContext) -> list[dict[str, Any]]:
    """Every queue: ready, in flight, delayed, dead, oldest message age, backlog."""
    return [queue_row(item) for item in queue_stats(ctx.broker, ctx.queues)]


def queue(ctx: OpsContext, name: str) -> dict[str, Any]:
    """One queue's numbers, its next ready messages and its delayed ones.

    Raises:
      UnknownQueue: No installed service declares *name*.
    """
    _queue(ctx, name)
    (item,) = queue_stats(ctx.broker, [name])
    return {
        **queue_row(item),
        "messages": ready_messages(ctx.broker, name),
        "delayed_messages": delayed_messages(ctx.broker, name),
    }


def workers(ctx: OpsContext) -> dict[str, Any]:
    """Every live worker process and what it runs now."""
    now = dt.datetime.now(dt.UTC)
    live = live_workers(ctx.broker)
    return {
        "workers": [
            {
                "worker_id": info.worker_id,
                "service": info.service,
                "host": info.host,
                "pid": info.pid,
                "threads": info.threads,
                "queues": list(info.queues),
                "started_at": info.started_at.isoformat(),
                "heartbeat_age_s": round(info.heartbeat_age_s(now), 3),
            }
            for info in live
        ],
        "running": [
            {
                "job_id": job.message_id,
                "actor": job.actor,
                "queue": job.queue,
                "worker_id": job.worker_id,
                "started_at": job.started_at.isoformat(),
                "running_for_s": round(job.running_for_s(now), 3),
            }
            for job in running_jobs(ctx.broker)
        ],
    }


def workers_per_service(ctx: OpsContext) -> dict[str, int]:
    """How many live worker processes each service has (0 for a service with none)."""
    counts = Counter(info.service for info in live_workers(ctx.broker))
    return {service: counts.get(service, 0) for service in ctx.pools} | dict(counts)


def schedules(ctx: OpsContext) -> list[dict[str, Any]]:
    """Every schedule with its next and last fire and the last fire's outcome."""
    with ctx.sessions() as session:
        return schedule_control.describe_schedules(session)


def schedule(ctx: OpsContext, name: str) -> dict[str, Any]:
    """One schedule and its history (operators' changes, skipped fires), newest first.

    Raises:
      UnknownSchedule: No schedule has that name.
    """
    with ctx.sessions() as session:
        schedule_control.get(session, name)
        history = schedule_control.events(session, name, limit=100)
        (described,) = [row for row in schedule_control.describe_schedules(session) if row["name"] == name]
    return {
        **described,
        "history": [
            {
                "at": event.at.isoformat(),
                "kind": event.kind,
                "detail": event.detail,
                "by": event.by,
                "first_fire_at": event.first_fire_at.isoformat() if event.first_fire_at else None,
                "last_fire_at": event.last_fire_at.isoformat() if event.last_fire_at else None,
            }
            for event in history
        ],
    }


def overview(ctx: OpsContext) -> dict[str, Any]:
    """Throughput per minute over the last hour, the queues, live workers per service, the next fires."""
    with ctx.sessions() as session:
        throughput = stats.per_minute(session, minutes=60)
    upcoming = sorted((row for row in schedules(ctx) if row["next_fire"]), key=lambda row: row["next_fire"])
    return {
        "throughput": throughput,
        "queues": queues(ctx),
        "workers": workers_per_service(ctx),
        "next_fires": [
            {"name": row["name"], "next_fire": row["next_fire"], "actor": row["actor"]} for row in upcoming[:NEXT_FIRES]
        ],
    }


def dead_letter_queues(ctx: OpsContext) -> list[dict[str, Any]]:
    """Every queue with how many dead letters it holds."""
    return [{"queue": item.queue, "dead": item.dead} for item in queue_stats(ctx.broker, ctx.queues)]


def dead_letters(ctx: OpsContext, name: str, *, limit: int = 200) -> dict[str, Any]:
    """The newest dead letters of queue *name* with their reasons.

    Raises:
      UnknownQueue: No installed service declares *name*.
    """
    _queue(ctx, name)
    letters = list_dead_letters(ctx.broker, name, limit=limit)
    return {
        "queue": name,
        "dead_letters": [
            {
                "job_id": letter.job_id,
                "actor": letter.actor,
                "error_type": letter.error_type,
                "reason": letter.reason,
                "died_at": letter.dead_at.isoformat(),
                "args": dict(letter.message.kwargs) if letter.message else None,
            }
            for letter in letters
        ],
    }


def job_search(ctx: OpsContext, filters: jobs.JobFilters, *, limit: int = jobs.PAGE_SIZE) -> dict[str, Any]:
    """A page of the job history; ``next`` is the cursor of the following page (None at the end)."""
    with ctx.sessions() as session:
        found = jobs.search(session, filters, limit=limit)
    last = found[-1] if len(found) == limit else None
    return {"jobs": found, "next": f"{last['updated_at']}|{last['job_id']}" if last else None}


def job(ctx: OpsContext, job_id: str) -> dict[str, Any] | None:
    """Everything known about one job (None when there is no record of it).

    Raises:
      InvalidJobId: *job_id* is not a UUID.
    """
    key = jobs.parse_job_id(job_id)
    with ctx.sessions() as session:
        return jobs.detail(session, key, trace_url_template=ctx.options.trace_url_template)


def actors(ctx: OpsContext, *, minutes: int = 60) -> dict[str, Any]:
    """Per actor: attempts, rates and duration percentiles over the last *minutes*."""
    with ctx.sessions() as session:
        return {"window_min": minutes, "actors": stats.per_actor(session, minutes=minutes)}


def actor(ctx: OpsContext, name: str, *, minutes: int = 60) -> dict[str, Any]:
    """One actor's series over the last *minutes*."""
    with ctx.sessions() as session:
        return {"actor": name, "window_min": minutes, "series": stats.actor_series(session, name, minutes=minutes)}


def audit_entries(ctx: OpsContext, *, before_id: int | None = None, who: str | None = None) -> dict[str, Any]:
    """A page of the audit, newest first."""
    with ctx.sessions() as session:
        found = audit.entries(session, before_id=before_id, who=who)
    return {"entries": found, "next": found[-1]["id"] if len(found) == audit.PAGE_SIZE else None}
