"""Encrypted connections for real: Redis behind TLS and PostgreSQL with SSL on, certificates made here.

Redis: the embedded server behind a TLS-terminating proxy that also requires a
client certificate (``tests/support/tls.py`` says why a proxy); a broker and a
worker built from the settings enqueue and run a message through it, and a
client trusting another CA is refused. PostgreSQL: the embedded server behind
a proxy that speaks the protocol's TLS negotiation (its wheel is built without
SSL); the platform's engine and migrations connect with ``sslmode=verify-full``
and a client certificate, and are refused with the wrong CA or host name.
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
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.db import migrate
from nightshift.common.db.engine import make_engine
from nightshift.common.health import readiness_check
from nightshift.common.processes import wait_for
from nightshift.common.redis_client import RedisTLS
from nightshift.common.redis_ha import redis_client
from nightshift.common.settings import CommonSettings
from tests.support.servers import psycopg_url
from tests.support.tls import CertificateAuthority, Issued, TLSProxy

pytestmark = pytest.mark.integration

QUEUE = "tls_probe"


class Authorities:
    """The test CA with its server and client certificates, and a CA nobody trusts."""

    def __init__(self, folder: Path) -> None:
        self.ca = CertificateAuthority.create(folder, "nightshift-test-ca")
        self.wrong = CertificateAuthority.create(folder, "wrong-ca")
        self.server: Issued = self.ca.issue("server")
        self.client: Issued = self.ca.issue("worker", client=True)
        self.impostor: Issued = self.wrong.issue("impostor", client=True)


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> Authorities:
    return Authorities(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def tls_redis(redis_url: str, authorities: Authorities) -> Iterator[TLSProxy]:
    """The session's Redis behind TLS, client certificates required."""
    address = urlsplit(redis_url)
    assert address.hostname is not None and address.port is not None
    proxy = TLSProxy(authorities.server, (address.hostname, address.port), client_ca=authorities.ca.cert_file).start()
    yield proxy
    proxy.stop()


@dramatiq.actor(queue_name=QUEUE, actor_name="tls_probe_touch", max_retries=0)
def touch(key: str) -> None:
    runtime.app_redis().set(key, "ran")


def test_a_worker_runs_a_message_over_tls_to_redis_and_postgresql(
    env: CommonSettings,
    monkeypatch: pytest.MonkeyPatch,
    clean_db: Engine,
    redis_url: str,
    database_url: str,
    tls_redis: TLSProxy,
    tls_postgres: TLSProxy,
    authorities: Authorities,
) -> None:
    monkeypatch.setenv("REDIS_URL", f"rediss://localhost:{tls_redis.port}/0")
    monkeypatch.setenv("REDIS_TLS_CA_FILE", str(authorities.ca.cert_file))
    monkeypatch.setenv("REDIS_TLS_CERT_FILE", str(authorities.client.cert_file))
    monkeypatch.setenv("REDIS_TLS_KEY_FILE", str(authorities.client.key_file))
    monkeypatch.setenv(
        "DATABASE_URL", _tls_database_url(database_url, tls_postgres, authorities.ca.cert_file, authorities.client)
    )
    runtime.reset()
    settings = runtime.settings()
    assert settings.broker_url == f"rediss://localhost:{tls_redis.port}/1"

    previous = dramatiq.get_broker()
    broker = build_broker(settings)
    touch.broker = broker
    broker.declare_actor(touch)
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=2)
    worker.start()
    key = f"tls-probe:{uuid.uuid4().hex}"
    try:
        message = touch.send(key)
        # Read back behind the proxies: the effect and the job record went through TLS.
        plain = redis.Redis.from_url(redis_url)
        wait_for(lambda: plain.get(key) == b"ran", timeout=10, what="the actor's effect via TLS")
        wait_for(
            lambda: _job_status(clean_db, message.message_id) == "done",
            timeout=10,
            what="the job record of the message sent over TLS",
        )
        ready, detail = readiness_check(redis_client(settings, socket_timeout=1, socket_connect_timeout=1), clean_db)()
        assert ready, detail
    finally:
        worker.stop(timeout=5000)
        broker.close()
        touch.broker = previous
        dramatiq.set_broker(previous)
    assert tls_redis.refused == [] and tls_postgres.refused == []


def test_redis_refuses_a_wrong_ca_and_a_missing_client_certificate(
    env: CommonSettings, tls_redis: TLSProxy, authorities: Authorities
) -> None:
    url = f"rediss://localhost:{tls_redis.port}/0"
    right = RedisTLS(str(authorities.ca.cert_file), str(authorities.client.cert_file), str(authorities.client.key_file))
    assert redis_client(_on(env, url, right)).ping()

    # The client does not trust the server: it hangs up during the handshake.
    refused_at_start = len(tls_redis.refused)
    wrong_ca = RedisTLS(
        str(authorities.wrong.cert_file), str(authorities.client.cert_file), str(authorities.client.key_file)
    )
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        redis_client(_on(env, url, wrong_ca), socket_timeout=5).ping()
    # The proxy records that hang-up on its own thread: let it land before counting the next ones.
    wait_for(lambda: len(tls_redis.refused) > refused_at_start, timeout=5, what="the proxy seeing the hang-up")

    # The server does not trust the client: no certificate, or one from another CA.
    before = len(tls_redis.refused)
    for tls in (
        RedisTLS(str(authorities.ca.cert_file)),
        RedisTLS(
            str(authorities.ca.cert_file), str(authorities.impostor.cert_file), str(authorities.impostor.key_file)
        ),
    ):
        with pytest.raises(redis.ConnectionError):
            redis_client(_on(env, url, tls), socket_timeout=5).ping()
    wait_for(lambda: len(tls_redis.refused) >= before + 2, timeout=5, what="the proxy's two refusals")
    assert all("certificate" in reason.lower() for reason in tls_redis.refused[before:]), tls_redis.refused

    # The URL's own query parameters, which redis-py reads, work as well as the settings.
    query = (
        f"?ssl_ca_certs={authorities.ca.cert_file}&ssl_certfile={authorities.client.cert_file}"
        f"&ssl_keyfile={authorities.client.key_file}"
    )
    assert redis_client(_on(env, url + query)).ping()


def _on(env: CommonSettings, url: str, tls: RedisTLS | None = None) -> CommonSettings:
    """*env* with ``REDIS_URL`` *url* and the ``REDIS_TLS_*`` files of *tls*."""
    files = tls or RedisTLS()
    return env.model_copy(
        update={
            "redis_url": url,
            "redis_tls_ca_file": files.ca_file,
            "redis_tls_cert_file": files.cert_file,
            "redis_tls_key_file": files.key_file,
        }
    )


@pytest.fixture(scope="module")
def tls_postgres(database_url: str, authorities: Authorities) -> Iterator[TLSProxy]:
    """The session's PostgreSQL behind TLS (see ``tests/support/tls.py``), client certificates required."""
    with psycopg.connect(psycopg_url(database_url)) as probe:
        host, port = probe.info.host, probe.info.port
    upstream: tuple[str, int] | Path = Path(host) / f".s.PGSQL.{port}" if host.startswith("/") else (host, port)
    proxy = TLSProxy(authorities.server, upstream, client_ca=authorities.ca.cert_file, protocol="postgres").start()
    yield proxy
    proxy.stop()


def _tls_database_url(database_url: str, proxy: TLSProxy, ca: Path, client: Issued | None) -> str:
    """*database_url*'s database through *proxy*, with ``sslmode=verify-full`` and *ca* as the root."""
    name = urlsplit(database_url).path
    url = f"postgresql://postgres@localhost:{proxy.port}{name}?sslmode=verify-full&sslrootcert={ca}"
    if client is not None:
        url += f"&sslcert={client.cert_file}&sslkey={client.key_file}"
    return url


def test_postgres_verify_full_connects_and_a_wrong_ca_is_refused(
    database_url: str, tls_postgres: TLSProxy, authorities: Authorities
) -> None:
    verified = _tls_database_url(database_url, tls_postgres, authorities.ca.cert_file, authorities.client)
    # Through the platform's own paths: the migrations and an engine built from DATABASE_URL.
    migrate.upgrade(verified)
    engine = make_engine(verified)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() >= 1
            assert connection.connection.dbapi_connection.pgconn.ssl_in_use  # type: ignore[union-attr]
    finally:
        engine.dispose()
    assert tls_postgres.refused == []

    wrong = make_engine(_tls_database_url(database_url, tls_postgres, authorities.wrong.cert_file, authorities.client))
    try:
        with pytest.raises(OperationalError, match="certificate verify failed"), wrong.connect():
            pass
    finally:
        wrong.dispose()

    # verify-full checks the name too: the certificate is not valid for another host name.
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(
            host="nightshift.invalid",
            hostaddr="127.0.0.1",
            port=tls_postgres.port,
            user="postgres",
            dbname="postgres",
            sslmode="verify-full",
            sslrootcert=str(authorities.ca.cert_file),
            sslcert=str(authorities.client.cert_file),
            sslkey=str(authorities.client.key_file),
            connect_timeout=3,
        ).close()

    # The server side refuses a client without TLS, and one without a certificate it trusts.
    before = len(tls_postgres.refused)
    for url in (
        f"postgresql://postgres@localhost:{tls_postgres.port}/postgres?sslmode=disable",
        _tls_database_url(database_url, tls_postgres, authorities.ca.cert_file, None),
        _tls_database_url(database_url, tls_postgres, authorities.ca.cert_file, authorities.impostor),
    ):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=3).execute("SELECT 1")
    wait_for(lambda: len(tls_postgres.refused) >= before + 3, timeout=5, what="the proxy's three refusals")
    assert "did not ask for TLS" in tls_postgres.refused[before]


def _job_status(engine: Engine, job_id: str) -> str | None:
    with engine.connect() as connection:
        status: str | None = connection.execute(
            text("SELECT status FROM job_records WHERE message_id = :id"), {"id": job_id}
        ).scalar()
    return status
