"""The JSON API: the data of every page, the operators' actions, publishing and the catalog.

Reads need the ``read`` scope, actions ``act``, ``POST /api/events/…``
``publish``. A signed-in browser uses it too (the pages' live parts), sending
its CSRF token with every change.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field

from nightshift.ops import actions, alert_views, views
from nightshift.ops.accounts import Principal
from nightshift.ops.jobs import STATUSES, JobFilters, parse_cursor, parse_job_id
from nightshift.ops.publishing import catalog_schemas, publish_once
from nightshift.ops.security import api_access, context
from nightshift.ops.stats import WINDOWS_MIN

router = APIRouter(prefix="/api")

Reader = Annotated[Principal, Depends(api_access("read"))]
Actor = Annotated[Principal, Depends(api_access("act"))]
Publisher = Annotated[Principal, Depends(api_access("publish"))]


class JobIds(BaseModel):
    """Which dead letters: the listed job ids, or every one with ``all``."""

    job_ids: list[str] = Field(default_factory=list, max_length=10_000)
    all: bool = False

    def selection(self) -> list[str] | None:
        if self.all == bool(self.job_ids):
            raise HTTPException(422, "give either job_ids or all=true")
        return None if self.all else self.job_ids


class RevokeRequest(BaseModel):
    terminate: bool = False


class CronRequest(BaseModel):
    """A new cron expression (5 fields, or 6 with seconds first); null goes back to the declared one."""

    cron: str | None


@router.get("/overview", summary="Throughput, queues, workers per service, next fires")
def overview(request: Request, who: Reader) -> dict[str, Any]:
    return views.overview(context(request))


@router.get("/queues", summary="Every queue's ready, in flight, delayed, dead, oldest age, backlog")
def queues(request: Request, who: Reader) -> list[dict[str, Any]]:
    return views.queues(context(request))


@router.get("/queues/{queue}", summary="One queue's numbers, ready messages and delayed messages")
def queue(request: Request, queue: str, who: Reader) -> dict[str, Any]:
    return views.queue(context(request), queue)


@router.post("/queues/{queue}/purge", summary="Drop every ready message of the queue")
def purge(request: Request, queue: str, who: Actor) -> dict[str, Any]:
    ctx = context(request)
    views.queue(ctx, queue)  # 404 for an unknown queue
    return {"queue": queue, "purged": actions.purge(ctx.broker, ctx.sessions, who, queue)}


@router.get("/workers", summary="Live worker processes and what they run now")
def workers(request: Request, who: Reader) -> dict[str, Any]:
    return views.workers(context(request))


@router.get("/jobs", summary="Search the job history (newest first, keyset-paged)")
def jobs(
    request: Request,
    who: Reader,
    id: str | None = None,
    actor: str | None = None,
    queue: str | None = None,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$")] = None,
    trace_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before: Annotated[str | None, Query(description="The `next` cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    filters = JobFilters(
        job_id=parse_job_id(id) if id else None,
        actor=actor,
        queue=queue,
        status=status,
        trace_id=trace_id,
        since=since,
        until=until,
        before=parse_cursor(before) if before else None,
    )
    return views.job_search(context(request), filters, limit=limit)


@router.get("/jobs/{job_id}", summary="A job: arguments, attempts, error, traceback, trigger, trace link")
def job(request: Request, job_id: str, who: Reader) -> dict[str, Any]:
    found = views.job(context(request), job_id)
    if found is None:
        raise HTTPException(404, f"no job with id {job_id!r} in the job records")
    return found


@router.post("/jobs/{job_id}/revoke", summary="Revoke a job (it never starts); terminate aborts a running one")
def revoke(request: Request, job_id: str, body: RevokeRequest, who: Actor) -> dict[str, Any]:
    ctx = context(request)
    actions.revoke_job(ctx.broker, ctx.sessions, who, str(parse_job_id(job_id)), terminate=body.terminate)
    return {"job_id": job_id, "revoked": True, "terminate": body.terminate}


@router.get("/dead-letters", summary="Every queue with its number of dead letters")
def dead_letter_queues(request: Request, who: Reader) -> list[dict[str, Any]]:
    return views.dead_letter_queues(context(request))


@router.get("/dead-letters/{queue}", summary="A queue's dead letters with their reasons")
def dead_letters(request: Request, queue: str, who: Reader) -> dict[str, Any]:
    return views.dead_letters(context(request), queue)


@router.post("/dead-letters/{queue}/replay", summary="Replay dead letters (listed job ids, or all)")
def replay(request: Request, queue: str, body: JobIds, who: Actor) -> dict[str, Any]:
    ctx = context(request)
    views.dead_letters(ctx, queue, limit=1)  # 404 for an unknown queue
    count = actions.replay_dead_letters(ctx.broker, ctx.sessions, who, queue, body.selection())
    return {"queue": queue, "replayed": count}


@router.post("/dead-letters/{queue}/delete", summary="Delete dead letters (listed job ids, or all)")
def delete(request: Request, queue: str, body: JobIds, who: Actor) -> dict[str, Any]:
    ctx = context(request)
    views.dead_letters(ctx, queue, limit=1)
    count = actions.delete_dead_letters(ctx.broker, ctx.sessions, who, queue, body.selection())
    return {"queue": queue, "deleted": count}


@router.get("/schedules", summary="Every schedule: next and last fire, last outcome, last change")
def schedules(request: Request, who: Reader) -> list[dict[str, Any]]:
    return views.schedules(context(request))


@router.get("/schedules/{name}", summary="A schedule and its history")
def schedule(request: Request, name: str, who: Reader) -> dict[str, Any]:
    return views.schedule(context(request), name)


@router.post("/schedules/{name}/pause", summary="Stop firing the schedule until it is resumed")
def pause(request: Request, name: str, who: Actor) -> dict[str, Any]:
    return actions.change_schedule(context(request).sessions, who, name, "pause")


@router.post("/schedules/{name}/resume", summary="Fire the schedule again from now on")
def resume(request: Request, name: str, who: Actor) -> dict[str, Any]:
    return actions.change_schedule(context(request).sessions, who, name, "resume")


@router.post("/schedules/{name}/cron", summary="Change the cron expression (validated before it is saved)")
def set_cron(request: Request, name: str, body: CronRequest, who: Actor) -> dict[str, Any]:
    return actions.change_schedule(context(request).sessions, who, name, "set_cron", cron=body.cron)


@router.post("/schedules/{name}/run", summary="Enqueue the schedule's message now, once")
def run_now(request: Request, name: str, who: Actor) -> dict[str, Any]:
    ctx = context(request)
    return {"name": name, "job_id": actions.run_schedule_now(ctx.broker, ctx.sessions, who, name)}


@router.get("/actors", summary="Per actor: attempts, success and failure rates, p50/p95/p99 duration")
def actors(
    request: Request, who: Reader, window: Annotated[int, Query(description="Minutes: 60, 360 or 1440.")] = 60
) -> dict[str, Any]:
    if window not in WINDOWS_MIN:
        raise HTTPException(422, f"window must be one of {', '.join(map(str, WINDOWS_MIN))} (minutes)")
    return views.actors(context(request), minutes=window)


@router.get("/actors/{actor}", summary="One actor's throughput, failures and durations over time")
def actor(request: Request, actor: str, who: Reader, window: int = 60) -> dict[str, Any]:
    if window not in WINDOWS_MIN:
        raise HTTPException(422, f"window must be one of {', '.join(map(str, WINDOWS_MIN))} (minutes)")
    return views.actor(context(request), actor, minutes=window)


@router.get("/audit", summary="Who did what from the dashboard, the API or the CLI, and when")
def audit(request: Request, who: Reader, before: int | None = None, by: str | None = None) -> dict[str, Any]:
    return views.audit_entries(context(request), before_id=before, who=by)


class SilenceRequest(BaseModel):
    """Silence the alerts whose key starts with ``key`` (``backlog:`` for every backlog alert) for a while."""

    key: str = Field(min_length=1, max_length=300)
    duration_s: int = Field(gt=0, le=30 * 86_400)
    reason: str = Field(min_length=1, max_length=300)


@router.get("/alerts", summary="Active alerts, the recently resolved ones and the silences in force")
def alerts(request: Request, who: Reader) -> dict[str, Any]:
    return alert_views.alerts(context(request))


@router.get("/alerts/{alert_id}", summary="An alert: its evidence, lifecycle and deliveries")
def alert(request: Request, alert_id: int, who: Reader) -> dict[str, Any]:
    return alert_views.alert(context(request), alert_id)


@router.post("/alerts/silences", summary="Silence alerts by key or key prefix for a while (audited)")
def silence(request: Request, body: SilenceRequest, who: Actor) -> dict[str, Any]:
    ctx = context(request)
    return actions.silence_alerts(ctx.sessions, who, body.key, duration_s=body.duration_s, reason=body.reason)


@router.post("/alerts/silences/{silence_id}/end", summary="End a silence now (audited)")
def end_silence(request: Request, silence_id: int, who: Actor) -> dict[str, Any]:
    return actions.end_silence(context(request).sessions, who, silence_id)


@router.get("/maintenance", summary="Cache statistics with TTL advice, purges, dependency checks")
def maintenance(request: Request, who: Reader) -> dict[str, Any]:
    return alert_views.maintenance_status(context(request))


@router.get("/reports", summary="The weekly and monthly reports")
def reports(request: Request, who: Reader) -> list[dict[str, Any]]:
    return alert_views.reports(context(request))


@router.get("/reports/{report_id}", summary="A report's figures")
def report(request: Request, report_id: int, who: Reader) -> dict[str, Any]:
    return alert_views.report(context(request), report_id)[0]


@router.get("/catalog", summary="The event catalog as JSON Schema, per event and version")
def catalog(who: Reader) -> dict[str, Any]:
    return catalog_schemas()


@router.post(
    "/events/{name}",
    status_code=202,
    summary="Publish an event (validated against the catalog); Idempotency-Key makes a retry enqueue nothing",
)
def publish_event(
    request: Request,
    name: str,
    payload: dict[str, Any],
    who: Publisher,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    ctx = context(request)
    published = publish_once(ctx.sessions, ctx.broker, name, payload, idempotency_key=idempotency_key)
    return {"event": published.event, "job_ids": published.job_ids, "replayed": published.replayed}
