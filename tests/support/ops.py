"""Helpers of the ops tests: a context on the test servers, operators, tokens, a served app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from nightshift.common.db.engine import make_session_factory
from nightshift.common.processes import free_port, wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.ops.context import OpsContext
from nightshift.ops.settings import OpsSettings
from tests.support.ops_actors import QUEUE

#: The password every test operator gets.
PASSWORD = "correct horse battery staple"


def ops_context(env: CommonSettings, broker: NightshiftRedisBroker, engine: Engine, **options: object) -> OpsContext:
    """An ops context on the test servers, with the test actors' queue among the known ones."""
    settings = OpsSettings(extra_queues=QUEUE, stream_interval_ms=200, **options)  # type: ignore[arg-type]
    return OpsContext.build(env, settings, make_session_factory(engine), broker, redis.Redis.from_url(env.redis_url))


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve *app* with uvicorn on a free port in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
