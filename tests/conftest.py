"""Fixtures shared by every test: real servers, a migrated database, a Nightshift broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, text

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.db import migrate
from nightshift.common.db.engine import make_engine
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.support.servers import postgres_server, redis_server

#: Retry schedule used by tests: the shape of 1 s / 5 s / 25 s, fifty times faster.
TEST_RETRY_DELAYS_MS = (20, 100, 500)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_db(engine: Engine) -> Engine:
    """The engine, with every table but Alembic's emptied."""
    with engine.begin() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
        ).scalars()
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, database_url: str, tmp_path: Path) -> Iterator[CommonSettings]:
    """Point every setting at the test servers and a per-test outbox and storage folder."""
    values = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "STORAGE_URL": f"file://{tmp_path / 'storage'}",
        "RETRY_DELAYS_MS": "[" + ",".join(str(d) for d in TEST_RETRY_DELAYS_MS) + "]",
        "HEARTBEAT_TIMEOUT_MS": "2000",
        "RECORD_FLUSH_INTERVAL_MS": "50",
        "ENVIRONMENT": "test",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    runtime.reset()
    yield runtime.settings()
    runtime.reset()


@pytest.fixture
def redis_client(env: CommonSettings) -> redis.Redis[bytes]:
    """A client on the broker database, emptied first."""
    client = redis.Redis.from_url(env.broker_url)
    # A long timeout for the flushes alone: emptying what a chaos scenario left (a million keys) takes seconds.
    redis.Redis.from_url(env.broker_url, socket_timeout=120).flushdb()
    redis.Redis.from_url(env.redis_url, socket_timeout=120).flushdb()
    return client


@pytest.fixture
def broker(env: CommonSettings, redis_client: redis.Redis[bytes], clean_db: Engine) -> Iterator[NightshiftRedisBroker]:
    """A Nightshift broker with the full middleware stack on empty Redis and database."""
    previous = dramatiq.get_broker()
    broker = build_broker(env)
    # Actors bind to the global broker when their module is first imported: carry them over.
    for name in previous.get_declared_actors():
        actor = previous.get_actor(name)
        actor.broker = broker
        broker.declare_actor(actor)
    yield broker
    broker.close()


@pytest.fixture
def run_worker(broker: NightshiftRedisBroker) -> Iterator[object]:
    """Start a real Dramatiq worker on *broker* for the given queues; stopped at teardown."""
    started: list[dramatiq.Worker] = []

    def start(queues: set[str], threads: int = 4) -> dramatiq.Worker:
        for queue in queues:
            broker.declare_queue(queue)
        worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=5000)
