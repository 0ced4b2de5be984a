"""Encrypted connections for real: PostgreSQL with SSL on and Redis behind TLS, certificates made here.

PostgreSQL: a server of its own started with ``ssl=on``, the certificates made
here and only ``hostssl … cert`` access (``tests/support/ssl_postgres.py``; the
embedded server of the rest of the suite is built without SSL). Every client
comes from the settings, as in production: the migrations, the engines and the
outbox relay's own psycopg connection connect with ``sslmode=verify-full`` and a
client certificate; a wrong CA, a wrong host name, a plain connection and a
missing or foreign client certificate are refused.

Redis: the embedded server behind a TLS-terminating proxy that requires a client
certificate (``tests/support/tls.py`` says why a proxy); clients built from the
``REDIS_TLS_*`` settings by ``redis_client`` verify the server with the CA and
present their certificate; a wrong CA and a missing or foreign client
certificate are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dramatiq
import psycopg
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.db import migrate
from nightshift.common.health import readiness_check
from nightshift.common.outbox import OUTBOX_CHANNEL, OutboxRelay
from nightshift.common.processes import wait_for
from nightshift.common.redis_ha import redis_client
from nightshift.common.settings import CommonSettings
from tests.support.ssl_postgres import SUPERUSER, SSLPostgres
from tests.support.tls import CertificateAuthority, Issued, TLSProxy

pytestmark = pytest.mark.integration

QUEUE = "tls_probe"
DATABASE = "nightshift_tls"


class Authorities:
    """The test CA with its server and client certificates, and a CA nobody trusts with a client of its own."""

    def __init__(self, folder: Path) -> None:
        self.ca = CertificateAuthority.create(folder, "nightshift-test-ca")
        self.server: Issued = self.ca.issue("server")
        #: Redis's client (any name), and a client of the right CA that PostgreSQL must not let in as postgres.
        self.client: Issued = self.ca.issue("worker", client=True)
        #: PostgreSQL's ``cert`` method: the common name is the user it logs in as.
        self.postgres_client: Issued = self.ca.issue(SUPERUSER, client=True)
        self.wrong = CertificateAuthority.create(folder / "wrong", "wrong-ca")
        self.impostor: Issued = self.wrong.issue(SUPERUSER, client=True)


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> Authorities:
    return Authorities(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def ssl_postgres(authorities: Authorities) -> Iterator[SSLPostgres]:
    """A PostgreSQL of its own with SSL on: TLS only, a client certificate of the test CA required."""
    server = SSLPostgres(authorities.server.cert_file, authorities.server.key_file, authorities.ca.cert_file)
    try:
        server.start(client_cert=authorities.postgres_client.cert_file, client_key=authorities.postgres_client.key_file)
        with psycopg.connect(_url(server, authorities, database="postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        server.stop()


def _url(
    server: SSLPostgres,
    authorities: Authorities,
    *,
    ca: CertificateAuthority | None = None,
    client: Issued | None = None,
    database: str = DATABASE,
    host: str = "localhost",
) -> str:
    """A ``verify-full`` URL to *server*: the test CA and postgres's certificate unless told otherwise."""
    client = client or authorities.postgres_client
    return server.dsn(
        ca_file=(ca or authorities.ca).cert_file,
        cert_file=client.cert_file,
        key_file=client.key_file,
        host=host,
        database=database,
    )


@pytest.fixture(scope="module")
def tls_database_url(ssl_postgres: SSLPostgres, authorities: Authorities) -> str:
    """The TLS database's URL, its schema made by the migrations over ``verify-full``."""
    url = _url(ssl_postgres, authorities)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def tls_redis(redis_url: str, authorities: Authorities) -> Iterator[TLSProxy]:
    """The session's Redis behind TLS, client certificates required."""
    address = urlsplit(redis_url)
    assert address.hostname is not None and address.port is not None
    proxy = TLSProxy(authorities.server, (address.hostname, address.port), client_ca=authorities.ca.cert_file).start()
    yield proxy
    proxy.stop()


def _settings(monkeypatch: pytest.MonkeyPatch, **variables: str | None) -> CommonSettings:
    """The process's settings after setting (or, for None, removing) environment *variables*."""
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    runtime.reset()
    return runtime.settings()


@dramatiq.actor(queue_name=QUEUE, actor_name="tls_probe_touch", max_retries=0)
def touch(key: str) -> None:
    runtime.app_redis().set(key, "ran")


def test_a_worker_runs_a_message_over_tls_to_redis_and_postgresql(
    env: CommonSettings,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    tls_database_url: str,
    tls_redis: TLSProxy,
    authorities: Authorities,
) -> None:
    settings = _settings(
        monkeypatch,
        REDIS_URL=f"rediss://localhost:{tls_redis.port}/0",
        REDIS_TLS_CA_FILE=str(authorities.ca.cert_file),
        REDIS_TLS_CERT_FILE=str(authorities.client.cert_file),
        REDIS_TLS_KEY_FILE=str(authorities.client.key_file),
        DATABASE_URL=tls_database_url,
    )
    assert settings.broker_url == f"rediss://localhost:{tls_redis.port}/1"

    previous = dramatiq.get_broker()
    broker = build_broker(settings)
    touch.broker = broker
    broker.declare_actor(touch)
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=2)
    worker.start()
    # The outbox relay's LISTEN connection is psycopg's own, its DSN taken from the engine's URL.
    relay = OutboxRelay(runtime.engine(), broker)
    relay.start()
    key = f"tls-probe:{uuid.uuid4().hex}"
    try:
        message = touch.send(key)
        # Read back behind the proxy: the effect went through TLS.
        plain = redis.Redis.from_url(redis_url)
        wait_for(lambda: plain.get(key) == b"ran", timeout=10, what="the actor's effect via TLS")
        wait_for(lambda: _job_status(message.message_id) == "done", timeout=10, what="the job record written over TLS")
        wait_for(_listening, timeout=10, what="the outbox relay's LISTEN connection")
        ready, detail = readiness_check(
            redis_client(settings, socket_timeout=1, socket_connect_timeout=1), runtime.engine()
        )()
        assert ready, detail
        # Every connection the server has from the platform is TLS, with postgres's certificate.
        with runtime.engine().connect() as connection:
            seen = connection.execute(
                text(
                    "SELECT a.application_name, s.ssl, s.client_dn FROM pg_stat_activity a JOIN pg_stat_ssl s "
                    "USING (pid) WHERE a.backend_type = 'client backend' AND a.datname = :db"
                ),
                {"db": DATABASE},
            ).all()
    finally:
        relay.stop()
        worker.stop(timeout=5000)
        broker.close()
        touch.broker = previous
        dramatiq.set_broker(previous)
    assert {name for name, _, _ in seen} >= {"nightshift", "nightshift-records"}
    assert all(ssl and client_dn == f"/CN={SUPERUSER}" for _, ssl, client_dn in seen), seen
    assert tls_redis.refused == []


def test_redis_verifies_the_server_and_presents_the_client_certificate(
    env: CommonSettings, monkeypatch: pytest.MonkeyPatch, tls_redis: TLSProxy, authorities: Authorities
) -> None:
    url = f"rediss://localhost:{tls_redis.port}/0"

    def client(ca: Path, cert: Issued | None) -> redis.Redis[bytes]:
        """A client built as every one in the platform: the settings, then ``redis_client``."""
        settings = _settings(
            monkeypatch,
            REDIS_URL=url,
            REDIS_TLS_CA_FILE=str(ca),
            REDIS_TLS_CERT_FILE=str(cert.cert_file) if cert else None,
            REDIS_TLS_KEY_FILE=str(cert.key_file) if cert else None,
        )
        # A timeout, so that a handshake the proxy refuses fails at once.
        return redis_client(settings, socket_timeout=5)

    assert client(authorities.ca.cert_file, authorities.client).ping()

    # The client does not trust the server: it hangs up during the handshake.
    refused_at_start = len(tls_redis.refused)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client(authorities.wrong.cert_file, authorities.client).ping()
    # The proxy records that hang-up on its own thread: let it land before counting the next ones.
    wait_for(lambda: len(tls_redis.refused) > refused_at_start, timeout=5, what="the proxy seeing the hang-up")

    # The server does not trust the client: no certificate, or one from another CA.
    before = len(tls_redis.refused)
    for certificate in (None, authorities.impostor):
        with pytest.raises(redis.ConnectionError):
            client(authorities.ca.cert_file, certificate).ping()
    wait_for(lambda: len(tls_redis.refused) >= before + 2, timeout=5, what="the proxy's two refusals")
    assert all("certificate" in reason.lower() for reason in tls_redis.refused[before:]), tls_redis.refused

    # The URL's own query parameters, which redis-py reads, work as well as the settings.
    query = (
        f"?ssl_ca_certs={authorities.ca.cert_file}&ssl_certfile={authorities.client.cert_file}"
        f"&ssl_keyfile={authorities.client.key_file}"
    )
    settings = _settings(
        monkeypatch, REDIS_URL=url + query, REDIS_TLS_CA_FILE=None, REDIS_TLS_CERT_FILE=None, REDIS_TLS_KEY_FILE=None
    )
    assert settings.redis_tls is None and runtime.app_redis().ping()


def test_postgres_verify_full_connects_and_refuses_a_wrong_ca_or_host_name(
    env: CommonSettings,
    monkeypatch: pytest.MonkeyPatch,
    ssl_postgres: SSLPostgres,
    tls_database_url: str,
    authorities: Authorities,
) -> None:
    # The engine the settings give, as in every service.
    _settings(monkeypatch, DATABASE_URL=tls_database_url)
    with runtime.engine().connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() >= 1
        ssl, version = connection.execute(
            text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        ).one()
    assert ssl and version.startswith("TLS")

    # The client does not trust the server's certificate.
    _settings(monkeypatch, DATABASE_URL=_url(ssl_postgres, authorities, ca=authorities.wrong))
    with pytest.raises(OperationalError, match="certificate verify failed"), runtime.engine().connect():
        pass

    # verify-full checks the name too: the certificate is not valid for another host name.
    misnamed = _url(ssl_postgres, authorities, host="nightshift.invalid") + "&hostaddr=127.0.0.1"
    _settings(monkeypatch, DATABASE_URL=misnamed)
    with pytest.raises(OperationalError, match="does not match host name"), runtime.engine().connect():
        pass


@pytest.mark.parametrize(
    ("how", "refusal"),
    [
        ("plain", "no encryption"),
        ("no client certificate", "requires a valid client certificate"),
        ("a certificate of another CA", "unknown ca"),
        ("another user's certificate", 'certificate authentication failed for user "postgres"'),
    ],
)
def test_postgres_refuses_clients_without_tls_or_a_certificate_for_the_user(
    ssl_postgres: SSLPostgres, authorities: Authorities, how: str, refusal: str
) -> None:
    url = {
        "plain": f"postgresql://{SUPERUSER}@localhost:{ssl_postgres.port}/{DATABASE}?sslmode=disable",
        "no client certificate": ssl_postgres.dsn(ca_file=authorities.ca.cert_file, cert_file=None, key_file=None),
        "a certificate of another CA": _url(ssl_postgres, authorities, client=authorities.impostor),
        "another user's certificate": _url(ssl_postgres, authorities, client=authorities.client),
    }[how]
    with pytest.raises(psycopg.OperationalError, match=refusal):
        psycopg.connect(url, connect_timeout=3).close()


def _job_status(job_id: str) -> str | None:
    with runtime.engine().connect() as connection:
        status: str | None = connection.execute(
            text("SELECT status FROM job_records WHERE message_id = :id"), {"id": job_id}
        ).scalar()
    return status


def _listening() -> bool:
    """Whether a TLS connection of the database is listening on the outbox channel."""
    with runtime.engine().connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT bool_or(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                    "WHERE a.query = :listen AND a.datname = :db"
                ),
                {"listen": f"LISTEN {OUTBOX_CHANNEL}", "db": DATABASE},
            ).scalar()
        )
