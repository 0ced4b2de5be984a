"""In-process schedulers on the real Redis and PostgreSQL of the test session."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common import runtime
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.schedules import Schedule
from nightshift.common.settings import CommonSettings
from nightshift.scheduler.claims import FireClaims
from nightshift.scheduler.lease import FENCE_KEY, LEASE_KEY, LeaderLease
from nightshift.scheduler.loop import Scheduler

#: Lease TTL of the in-process schedulers: short, so a takeover is quick.
TEST_LEASE_TTL_MS = 900


@dataclass
class Running:
    scheduler: Scheduler
    lease: LeaderLease
    stop: threading.Event
    thread: threading.Thread

    def kill(self) -> None:
        """Stop without releasing the lease, as a killed process would."""
        self.stop.set()
        self.thread.join(timeout=5)
        self.lease._stopped.set()

    def shut_down(self) -> None:
        """Stop cleanly, handing the lease over."""
        self.stop.set()
        self.thread.join(timeout=5)
        self.lease.stop()


StartScheduler = Callable[..., Running]


@pytest.fixture
def app_redis(env: CommonSettings, redis_client: redis.Redis[bytes]) -> redis.Redis[bytes]:
    """The application Redis database (leases, claims), emptied by ``redis_client``."""
    return redis.Redis.from_url(env.redis_url)


@pytest.fixture
def start_scheduler(
    env: CommonSettings, broker: NightshiftRedisBroker, app_redis: redis.Redis[bytes]
) -> Iterator[StartScheduler]:
    """Start a scheduler thread on *schedules*; every one is stopped at teardown."""
    started: list[Running] = []

    def start(
        schedules: tuple[Schedule, ...],
        *,
        lease_key: str = LEASE_KEY,
        reload_ms: int = 100,
        session_factory: sessionmaker[Session] | None = None,
    ) -> Running:
        lease = LeaderLease(app_redis, ttl_ms=TEST_LEASE_TTL_MS, key=lease_key, fence=FENCE_KEY).start()
        scheduler = Scheduler(
            schedules={s.name: s for s in schedules},
            lease=lease,
            claims=FireClaims(app_redis, broker),
            session_factory=session_factory or runtime.session_factory(),
            default_timezone="Europe/Paris",
            reload_interval=dt.timedelta(milliseconds=reload_ms),
            tolerance=dt.timedelta(milliseconds=500),
        )
        stop = threading.Event()
        thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
        thread.start()
        running = Running(scheduler, lease, stop, thread)
        started.append(running)
        return running

    yield start
    for running in started:
        running.shut_down()
