"""The ops web application: pages, JSON API, live stream, metrics and probes in one FastAPI app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.errors import InvalidEvent, UnknownEvent, UnknownJob
from nightshift.common.health import readiness_check
from nightshift.common.redis_ha import redis_client
from nightshift.common.schedule_control import UnknownSchedule
from nightshift.ops import alert_views, api, pages, views
from nightshift.ops.context import OpsContext
from nightshift.ops.errors import LoginThrottled
from nightshift.ops.jobs import InvalidJobId
from nightshift.ops.metrics import UnknownPool, ops_registry, pool_backlog
from nightshift.ops.publishing import IdempotencyConflict
from nightshift.ops.security import LoginRequired
from nightshift.ops.settings import OpsSettings

#: Where the templates and the static files (scripts, styles, the chart library) are.
PACKAGE_DIR = Path(__file__).parent

#: Exceptions the handlers turn into answers, with their status.
STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (UnknownJob, 404),
    (UnknownSchedule, 404),
    (views.UnknownQueue, 404),
    (UnknownEvent, 404),
    (UnknownPool, 404),
    (alert_views.UnknownAlert, 404),
    (LookupError, 404),
    (InvalidEvent, 422),
    (InvalidJobId, 422),
    (ValueError, 422),
    (IdempotencyConflict, 409),
    (LoginThrottled, 429),
)


def default_context() -> OpsContext:
    """The context of a real process: everything from the environment."""
    settings = runtime.settings()
    return OpsContext.build(
        settings=settings,
        options=runtime.service_settings(OpsSettings),
        sessions=runtime.session_factory(),
        broker=build_broker(settings, set_global=False),
        app_redis=runtime.app_redis(),
    )


def create_app(ctx: OpsContext | None = None) -> FastAPI:
    """The application; *ctx* defaults to one built from the environment."""
    ctx = ctx or default_context()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.broker.close()  # flushes the job records of what this process enqueued

    app = FastAPI(
        lifespan=lifespan,
        title="Nightshift ops",
        description="Queues, workers, jobs, dead letters, schedules, actors and audit of the platform.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.ctx = ctx
    app.state.templates = templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    registry = ops_registry(ctx)
    # Through Sentinel when configured, as every client of the platform.
    probe = redis_client(ctx.settings, socket_timeout=1, socket_connect_timeout=1)
    readiness = readiness_check(probe, ctx.sessions.kw["bind"])

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, error: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return _error(request, error.status_code, str(error.detail), dict(error.headers or {}))

    for kind, status in STATUS_OF:
        app.add_exception_handler(kind, _handler(status))

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request) -> Response:
        return templates.TemplateResponse(request, "api_docs.html", {"openapi": app.openapi(), "who": None})

    @app.get("/api/stream", summary="Server-sent events: the overview's data every few seconds")
    async def stream(request: Request, who: api.Reader) -> StreamingResponse:
        return StreamingResponse(_overview_events(request, ctx), media_type="text/event-stream")

    @app.get("/livez", include_in_schema=False)
    def livez() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        ok, detail = readiness()
        return JSONResponse({"ok": ok, **detail}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest(REGISTRY) + generate_latest(ctx.broker.metrics_registry) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/api/metrics/backlog/{pool}",
        summary="KEDA metrics-api: a worker pool's (service's, or one queue's) backlog and oldest message age",
    )
    def pool_metrics(pool: str, who: api.Reader) -> dict[str, float]:
        return pool_backlog(ctx, pool)

    return app


async def _overview_events(request: Request, ctx: OpsContext) -> AsyncIterator[str]:
    interval = ctx.options.stream_interval_ms / 1000
    while not await request.is_disconnected():
        data = await run_in_threadpool(views.overview, ctx)
        yield f"event: overview\ndata: {json.dumps(data, default=str)}\n\n"
        await asyncio.sleep(interval)


def _handler(status: int) -> Any:
    async def handle(request: Request, error: Exception) -> Response:
        headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, LoginThrottled) else {}
        return _error(request, status, str(error).strip("'\""), headers)

    return handle


def _error(request: Request, status: int, message: str, headers: dict[str, str]) -> Response:
    if request.url.path.startswith("/api") or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message, "who": None}, status_code=status, headers=headers
    )
