"""The resources of the running process, built once on first use.

Actors reach the database, broker and settings through here, so a worker, the
CLI and a test all get the same objects without passing them around.
"""

from __future__ import annotations

import threading
from functools import cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.settings import CommonSettings, load_settings

_lock = threading.Lock()


@cache
def settings() -> CommonSettings:
    """The common settings (the process stops with a clear message if they are wrong)."""
    return load_settings(CommonSettings)


#: Connections per process: enough for the I/O-bound profile's 16 threads to each hold one.
POOL_SIZE = 10


@cache
def engine() -> Engine:
    """The process's engine (``POOL_SIZE`` connections, as many again on overflow)."""
    return make_engine(settings().database_url, pool_size=POOL_SIZE)


@cache
def session_factory() -> sessionmaker[Session]:
    return make_session_factory(engine())


def reset() -> None:
    """Forget every cached resource (tests that change the environment call this)."""
    with _lock:
        for function in (settings, engine, session_factory):
            function.cache_clear()
