"""Real Redis and PostgreSQL for the tests: the embedded ones, or TEST_REDIS_URL / TEST_DATABASE_URL."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from nightshift.common.db.engine import sqlalchemy_url
from nightshift.common.local.embedded import EmbeddedPostgres, EmbeddedRedis, runtime_dir_default


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Yield a Redis URL: TEST_REDIS_URL, or an embedded server stopped afterwards."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    server = EmbeddedRedis(workdir / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


#: The test PostgreSQL's parameters. The whole suite starts many workers and brokers, each with its
#: small pools: more than 100 connections at once. fsync and full-page writes only guard against an
#: operating-system crash (a killed server loses nothing without them), which no test makes.
SERVER_SETTINGS = {"max_connections": "400", "fsync": "off", "full_page_writes": "off"}


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """Yield the URL of a fresh, empty database, dropped (or deleted with its server) afterwards."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        name = f"nightshift_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(given, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        base, _, query = given.partition("?")
        url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
        try:
            yield url
        finally:
            with psycopg.connect(given, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    runtime_dir_default()
    # Not under pytest's temp folder: concurrent pytest sessions prune each other's old folders
    # there, and its 0700 permissions would have to be opened to the postgres system user.
    server = EmbeddedPostgres(
        Path(tempfile.mkdtemp(prefix="nightshift-pg-")) / "pg", keep=False, server_settings=SERVER_SETTINGS
    ).start()
    try:
        yield server.create_database("nightshift_test")
    finally:
        server.stop()


def psycopg_url(database_url: str) -> str:
    """*database_url* as plain libpq understands it."""
    return sqlalchemy_url(database_url).replace("postgresql+psycopg://", "postgresql://", 1)
