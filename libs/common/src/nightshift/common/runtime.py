"""The resources of the running process, built once on first use.

Actors reach the settings, database, storage and application Redis through here,
so a worker, the CLI and a test all get the same objects without passing them
around, and every ``actors.py`` stays parse-ids-and-call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import redis
from pydantic_settings import BaseSettings
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.sealing import Sealer
from nightshift.common.settings import CommonSettings, load_settings
from nightshift.common.storage import Storage, storage_from_settings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
ResourceT = TypeVar("ResourceT")

#: Re-entrant: a builder may itself ask for settings or another resource.
_lock = threading.RLock()
#: Per-process objects built by :func:`resource`, by their builder.
_resources: dict[object, Any] = {}


@cache
def settings() -> CommonSettings:
    """The common settings (the process stops with a clear message if they are wrong)."""
    return load_settings(CommonSettings)


def service_settings(cls: type[SettingsT]) -> SettingsT:
    """A service's settings class, loaded once per process.

    Raises:
      SystemExit: Naming every missing or malformed variable (see ``load_settings``).
    """
    return resource(lambda: load_settings(cls), key=cls)


def resource(build: Callable[[], ResourceT], *, key: object | None = None) -> ResourceT:
    """The object *build* returns, built once per process (until :func:`reset`).

    For per-process clients a service needs beside the common ones (a mailer, a
    push client): ``runtime.resource(build_mailer)``.

    Parameters:
      build: Makes the object; called at most once per key between resets.
      key: What identifies the object; *build* itself when omitted.
    """
    cache_key = build if key is None else key
    with _lock:
        if cache_key not in _resources:
            _resources[cache_key] = build()
        result: ResourceT = _resources[cache_key]
        return result


#: Connections per process: enough for the I/O-bound profile's 16 threads to each hold one.
POOL_SIZE = 10


@cache
def engine() -> Engine:
    """The process's engine (``POOL_SIZE`` connections, as many again on overflow)."""
    return make_engine(settings().database_url, pool_size=POOL_SIZE)


@cache
def session_factory() -> sessionmaker[Session]:
    """The sessionmaker every logic function is given."""
    return make_session_factory(engine())


@cache
def storage() -> Storage:
    """The configured object storage (local folder or S3)."""
    return storage_from_settings(settings())


@cache
def app_redis() -> redis.Redis[bytes]:
    """The application Redis (locks, caches, rate limits): ``REDIS_URL``, not the broker's database."""
    from nightshift.common.redis_ha import redis_client  # through Sentinel when configured

    return redis_client(settings())


@cache
def sealer() -> Sealer:
    """Seals and opens personal message fields with ``SEALING_KEYS`` (see :mod:`nightshift.common.sealing`)."""
    return Sealer(settings().sealing_key_ring())


def reset() -> None:
    """Forget every cached resource (tests that change the environment call this)."""
    with _lock:
        for function in (settings, engine, session_factory, storage, app_redis, sealer):
            function.cache_clear()
        _resources.clear()
