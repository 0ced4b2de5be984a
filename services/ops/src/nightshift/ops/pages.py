"""The dashboard's pages (server-rendered) and the forms that act, each backed by the same data as the API.

Forms post to the page they belong to and redirect back (303) with what was
done; each form carries the session's CSRF token. Viewers see the pages
without the forms and get 403 if they post anyway.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from nightshift.ops import actions, alert_views, views
from nightshift.ops.accounts import Principal, authenticate, close_session, open_session
from nightshift.ops.errors import InvalidCredentials, LoginThrottled
from nightshift.ops.jobs import STATUSES, JobFilters, parse_cursor, parse_job_id
from nightshift.ops.security import SESSION_COOKIE, client_address, context, page_access
from nightshift.ops.stats import WINDOWS_MIN

router = APIRouter(include_in_schema=False)

Reader = Annotated[Principal, Depends(page_access("read"))]
Actor = Annotated[Principal, Depends(page_access("act"))]

#: The double-submit cookie that protects the login form (there is no session yet).
LOGIN_CSRF_COOKIE = "nightshift_login_csrf"

#: The pages of the navigation bar: (path, title).
NAVIGATION = (
    ("/", "Overview"),
    ("/queues", "Queues"),
    ("/workers", "Workers"),
    ("/jobs", "Jobs"),
    ("/dead-letters", "Dead letters"),
    ("/schedules", "Schedules"),
    ("/actors", "Actors"),
    ("/alerts", "Alerts"),
    ("/maintenance", "Maintenance"),
    ("/reports", "Reports"),
    ("/audit", "Audit"),
)


def _render(request: Request, template: str, who: Principal | None, **data: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    context_data = {"who": who, "navigation": NAVIGATION, "done": request.query_params.get("done"), **data}
    return templates.TemplateResponse(request, template, context_data)


def _back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={quote(done)}", status_code=303)


# --- login ---------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never ``//host`` or ``http://…``): no open redirect."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    token = secrets.token_urlsafe(32)
    page = _render(request, "login.html", None, next=_safe_next(next), csrf_token=token, error=None)
    _set_cookie(request, page, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return page


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    ctx = context(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        raise HTTPException(403, "missing or wrong CSRF token; reload the login page and try again")
    address = client_address(request)
    try:
        ctx.throttle.check(name, address)
        operator = authenticate(ctx.sessions, name, password)
    except (LoginThrottled, InvalidCredentials) as error:
        if isinstance(error, InvalidCredentials):
            ctx.throttle.failed(name, address)
        status = 429 if isinstance(error, LoginThrottled) else 401
        refused = _render(request, "login.html", None, next=_safe_next(next), csrf_token=expected, error=str(error))
        refused.status_code = status
        return refused
    ctx.throttle.succeeded(name)
    token = open_session(ctx.sessions, operator, idle_s=ctx.options.session_idle_s)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=ctx.options.session_idle_s)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, who: Reader) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        close_session(context(request).sessions, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    secure = context(request).options.secure_cookies
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/")


# --- pages ---------------------------------------------------------------------------------------


@router.get("/")
def overview_page(request: Request, who: Reader) -> Response:
    return _render(request, "overview.html", who, data=views.overview(context(request)))


@router.get("/queues")
def queues_page(request: Request, who: Reader) -> Response:
    return _render(request, "queues.html", who, queues=views.queues(context(request)))


@router.get("/queues/{queue}")
def queue_page(request: Request, queue: str, who: Reader) -> Response:
    return _render(request, "queue.html", who, queue=views.queue(context(request), queue))


@router.post("/queues/{queue}/purge")
def purge_form(request: Request, queue: str, who: Actor, confirm: Annotated[str, Form()] = "") -> Response:
    ctx = context(request)
    views.queue(ctx, queue)
    if confirm != queue:
        raise HTTPException(422, f"type the queue's name ({queue}) to confirm the purge")
    count = actions.purge(ctx.broker, ctx.sessions, who, queue)
    return _back(f"/queues/{queue}", f"purged {count} ready messages")


@router.get("/workers")
def workers_page(request: Request, who: Reader) -> Response:
    return _render(request, "workers.html", who, data=views.workers(context(request)))


@router.get("/jobs")
def jobs_page(
    request: Request,
    who: Reader,
    id: str = "",
    actor: str = "",
    queue: str = "",
    status: str = "",
    trace_id: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
) -> Response:
    if status and status not in STATUSES:
        raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
    filters = JobFilters(
        job_id=parse_job_id(id) if id else None,
        actor=actor or None,
        queue=queue or None,
        status=status or None,
        trace_id=trace_id.strip().lower() or None,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
        before=_cursor(before),
    )
    form = {"id": id, "actor": actor, "queue": queue, "status": status, "trace_id": trace_id, "since": since}
    form["until"] = until
    found = views.job_search(context(request), filters)
    return _render(request, "jobs.html", who, found=found, form=form, statuses=STATUSES)


def _moment(value: str, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: {value!r} is not a date and time (2026-11-28T10:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _cursor(value: str) -> tuple[dt.datetime, Any] | None:
    return parse_cursor(value) if value else None


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, who: Reader) -> Response:
    found = views.job(context(request), job_id)
    if found is None:
        raise HTTPException(404, f"no job with id {job_id!r} in the job records")
    return _render(request, "job.html", who, job=found)


@router.post("/jobs/{job_id}/revoke")
def revoke_form(request: Request, job_id: str, who: Actor, terminate: Annotated[str, Form()] = "") -> Response:
    ctx = context(request)
    actions.revoke_job(ctx.broker, ctx.sessions, who, str(parse_job_id(job_id)), terminate=bool(terminate))
    return _back(f"/jobs/{job_id}", "revoked" + (" (terminate)" if terminate else ""))


@router.get("/dead-letters")
def dead_letters_page(request: Request, who: Reader) -> Response:
    return _render(request, "dead_letters.html", who, queues=views.dead_letter_queues(context(request)))


@router.get("/dead-letters/{queue}")
def dead_letter_queue_page(request: Request, queue: str, who: Reader) -> Response:
    return _render(request, "dead_letter_queue.html", who, data=views.dead_letters(context(request), queue))


@router.post("/dead-letters/{queue}/replay")
async def replay_form(request: Request, queue: str, who: Actor) -> Response:
    ctx = context(request)
    selection = await _selection(request)
    views.dead_letters(ctx, queue, limit=1)
    count = actions.replay_dead_letters(ctx.broker, ctx.sessions, who, queue, selection)
    return _back(f"/dead-letters/{queue}", f"replayed {count}")


@router.post("/dead-letters/{queue}/delete")
async def delete_form(request: Request, queue: str, who: Actor) -> Response:
    ctx = context(request)
    selection = await _selection(request)
    views.dead_letters(ctx, queue, limit=1)
    count = actions.delete_dead_letters(ctx.broker, ctx.sessions, who, queue, selection)
    return _back(f"/dead-letters/{queue}", f"deleted {count}")


async def _selection(request: Request) -> list[str] | None:
    """The job ids ticked in a dead-letter form (``job_id`` fields), or None for "all"."""
    form = await request.form()
    if form.get("all"):
        return None
    ids = [value for value in form.getlist("job_id") if isinstance(value, str)]
    if not ids:
        raise HTTPException(422, "select at least one dead letter (or use the button for all)")
    return ids


@router.get("/schedules")
def schedules_page(request: Request, who: Reader) -> Response:
    return _render(request, "schedules.html", who, schedules=views.schedules(context(request)))


@router.get("/schedules/{name}")
def schedule_page(request: Request, name: str, who: Reader) -> Response:
    return _render(request, "schedule.html", who, schedule=views.schedule(context(request), name))


@router.post("/schedules/{name}/{change}")
def schedule_form(request: Request, name: str, change: str, who: Actor, cron: Annotated[str, Form()] = "") -> Response:
    ctx = context(request)
    if change == "run":
        job_id = actions.run_schedule_now(ctx.broker, ctx.sessions, who, name)
        return _back(f"/schedules/{name}", f"enqueued job {job_id}")
    kinds = {"pause": "pause", "resume": "resume", "cron": "set_cron"}
    if change not in kinds:
        raise HTTPException(404, f"no such action {change!r} (pause, resume, cron, run)")
    result = actions.change_schedule(ctx.sessions, who, name, kinds[change], cron=cron.strip() or None)
    return _back(f"/schedules/{name}", str(result["change"]))


@router.get("/actors")
def actors_page(request: Request, who: Reader, window: int = 60) -> Response:
    if window not in WINDOWS_MIN:
        raise HTTPException(422, f"window must be one of {', '.join(map(str, WINDOWS_MIN))} (minutes)")
    return _render(
        request, "actors.html", who, data=views.actors(context(request), minutes=window), windows=WINDOWS_MIN
    )


@router.get("/actors/{actor}")
def actor_page(request: Request, actor: str, who: Reader, window: int = 60) -> Response:
    if window not in WINDOWS_MIN:
        raise HTTPException(422, f"window must be one of {', '.join(map(str, WINDOWS_MIN))} (minutes)")
    return _render(
        request, "actor.html", who, data=views.actor(context(request), actor, minutes=window), windows=WINDOWS_MIN
    )


@router.get("/audit")
def audit_page(request: Request, who: Reader, before: int | None = None, by: str = "") -> Response:
    return _render(
        request, "audit.html", who, data=views.audit_entries(context(request), before_id=before, who=by or None), by=by
    )


@router.get("/alerts")
def alerts_page(request: Request, who: Reader) -> Response:
    return _render(request, "alerts.html", who, data=alert_views.alerts(context(request)))


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: int, who: Reader) -> Response:
    return _render(request, "alert.html", who, alert=alert_views.alert(context(request), alert_id))


@router.post("/alerts/silence")
def silence_form(
    request: Request,
    who: Actor,
    key: Annotated[str, Form()],
    hours: Annotated[float, Form()],
    reason: Annotated[str, Form()],
) -> Response:
    result = actions.silence_alerts(context(request).sessions, who, key, duration_s=int(hours * 3600), reason=reason)
    return _back("/alerts", f"silenced {result['key']} until {result['until'][:16]}")


@router.post("/alerts/silences/{silence_id}/end")
def end_silence_form(request: Request, silence_id: int, who: Actor) -> Response:
    result = actions.end_silence(context(request).sessions, who, silence_id)
    return _back("/alerts", f"silence of {result['key']} ended")


@router.get("/maintenance")
def maintenance_page(request: Request, who: Reader) -> Response:
    return _render(request, "maintenance.html", who, data=alert_views.maintenance_status(context(request)))


@router.get("/reports")
def reports_page(request: Request, who: Reader) -> Response:
    return _render(request, "reports.html", who, reports=alert_views.reports(context(request)))


@router.get("/reports/{report_id}")
def report_page(request: Request, report_id: int, who: Reader) -> Response:
    _, html = alert_views.report(context(request), report_id)
    return HTMLResponse(html)
