"""Engines, sessions and transactions.

Logic functions take a ``sessionmaker[Session]`` named ``sessions`` and open
their transactions with :func:`transaction`, or a ``Session`` when they must run
inside their caller's transaction. Engines stay with the infrastructure (the
record writer, the outbox relay, health checks).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def sqlalchemy_url(database_url: str) -> str:
    """Return *database_url* with the psycopg 3 driver named, as SQLAlchemy wants it."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def make_engine(
    database_url: str,
    *,
    pool_size: int = 5,
    application_name: str = "nightshift",
    session_settings: Mapping[str, str] | None = None,
) -> Engine:
    """An engine with a pool sized for one worker process and fast failure when PostgreSQL is down.

    Parameters:
      session_settings: PostgreSQL settings for every connection (``{"lock_timeout": "2s"}``).
    """
    connect_args: dict[str, object] = {"connect_timeout": 3, "application_name": application_name}
    if session_settings:
        connect_args["options"] = " ".join(f"-c {name}={value}" for name, value in session_settings.items())
    return create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """The sessionmaker logic functions are given (as their ``sessions`` parameter)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on error.

    The one way logic functions open a transaction of their own; code that must
    run inside its caller's transaction takes a ``Session`` instead.
    """
    with sessions() as session, session.begin():
        yield session
