"""A connection outside any transaction, for the statements PostgreSQL refuses inside one.

``VACUUM``, ``CREATE INDEX CONCURRENTLY``, ``REINDEX … CONCURRENTLY`` and
session-level advisory locks need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker


@contextmanager
def autocommit(sessions: sessionmaker[Session]) -> Iterator[Connection]:
    """A connection of *sessions*' engine in autocommit mode, returned to the pool afterwards."""
    with sessions() as session:
        yield session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
