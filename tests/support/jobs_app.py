"""A small Starlette app serving job status, events and local storage links the way the ops service mounts them.

Tests run it under uvicorn in a thread (:func:`serve_jobs_app`) and read it with
httpx, so the server-sent events go through a real HTTP server and client. Tokens
are a fixed mapping here: token → the tenants (services) whose jobs it may read.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

import redis
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from nightshift.common import jobs
from nightshift.common.errors import JobForbidden, UnknownJob
from nightshift.common.processes import free_port, wait_for
from nightshift.common.storage.local import LocalStorage


def jobs_app(
    engine: Engine,
    client: redis.Redis[bytes],
    tokens: Mapping[str, Collection[str] | None],
    *,
    poll_s: float = 0.2,
    storage: LocalStorage | None = None,
) -> Starlette:
    """``GET /api/jobs/{id}`` and ``…/events`` behind bearer *tokens*; ``/files/…`` serves *storage*'s links."""

    def tenants_of(request: Request) -> Collection[str] | Response | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in tokens:
            return JSONResponse({"error": "a read-scoped token is required"}, status_code=401)
        return tokens[token]

    def refusal(error: Exception) -> Response:
        return JSONResponse({"error": str(error)}, status_code=404 if isinstance(error, UnknownJob) else 403)

    def status(request: Request) -> Response:
        tenants = tenants_of(request)
        if isinstance(tenants, Response):
            return tenants
        try:
            found = jobs.job_status(request.path_params["job_id"], engine=engine, redis=client)
            return JSONResponse(jobs.authorize(found, tenants).as_dict())
        except (UnknownJob, JobForbidden) as error:
            return refusal(error)

    def events(request: Request) -> Response:
        tenants = tenants_of(request)
        if isinstance(tenants, Response):
            return tenants
        last = request.headers.get("last-event-id")
        if last == jobs.FINAL_EVENT_ID:
            return Response(status_code=204)  # tells EventSource the stream is over
        try:
            updates = jobs.open_job_events(
                request.path_params["job_id"],
                engine=engine,
                redis=client,
                tenants=tenants,
                last_event_id=last,
                poll_interval_s=poll_s,
            )
        except (UnknownJob, JobForbidden) as error:
            return refusal(error)
        return StreamingResponse(
            jobs.sse_stream(updates), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    def files(request: Request) -> Response:
        """A local storage link: no token, the signature and expiry are the authorisation."""
        if storage is None:
            return Response(status_code=404)
        key = request.path_params["key"]
        query = request.query_params
        filename = query.get("filename")
        try:
            valid = storage.verify_link(
                key, int(query.get("expires", "0")), query.get("signature", ""), filename=filename
            )
        except ValueError:
            valid = False
        if not valid:
            return JSONResponse({"error": "this link is invalid or has expired"}, status_code=403)
        if not storage.exists(key):
            return Response(status_code=404)
        return FileResponse(storage.path(key), filename=filename)

    return Starlette(
        routes=[
            Route("/api/jobs/{job_id}", status),
            Route("/api/jobs/{job_id}/events", events),
            Route("/files/{key:path}", files),
        ],
    )


@contextmanager
def serve_jobs_app(app: Starlette) -> Iterator[str]:
    """Serve *app* with uvicorn on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="jobs-app", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=15, what="the jobs app to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
