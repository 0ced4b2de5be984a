"""Scenario 6: the active scheduler SIGKILLed during a burst of one-second schedules while Redis is slow.

Three schedulers reach Redis through a proxy adding 20 ms to every exchange (a
loaded Redis); the leader is killed part way. No second is fired twice, the
``catch_up`` schedule has every second, and the gap is bounded by the lease.
"""

from __future__ import annotations

import datetime as dt
import itertools
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.processes import wait_for
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import LONG, Report
from tests.support.scheduled_messages import ScheduledMessage, by_schedule, scheduled_messages
from tests.support.scheduler_processes import lease_holder_pid, scheduler_processes
from tests.support.scheduler_schedules import TICK
from tests.support.tcp_proxy import TcpProxy

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not LONG, reason="long form only: make chaos (CHAOS_LONG=1)"),
]

SECOND = dt.timedelta(seconds=1)
#: A standby takes over within the lease (3 s in tests) plus its reload; bounded by this.
GAP_BOUND = dt.timedelta(seconds=10)
#: Added to every Redis exchange of the schedulers.
LATENCY_S = 0.02
FIRES = 60


@pytest.fixture
def slow_redis(env: CommonSettings) -> Iterator[TcpProxy]:
    address = urlparse(env.redis_url)
    proxy = TcpProxy((address.hostname or "127.0.0.1", address.port or 6379), latency_s=LATENCY_S).start()
    yield proxy
    proxy.close()


def test_no_double_fire_and_a_bounded_gap_when_the_leader_dies_on_a_slow_redis(
    env: CommonSettings, redis_client: redis.Redis[bytes], clean_db: Engine, slow_redis: TcpProxy, tmp_path: Path
) -> None:
    app = redis.Redis.from_url(env.redis_url)

    def fires() -> list[ScheduledMessage]:
        return by_schedule(scheduled_messages(redis_client, TICK.queue_name)).get("ticks.catch_up", [])

    with scheduler_processes(3, tmp_path, env={"REDIS_URL": f"redis://127.0.0.1:{slow_redis.port}/0"}) as processes:
        wait_for(lambda: len(fires()) >= 20, timeout=90, what="twenty fires")
        victim = wait_for(lambda: lease_holder_pid(app), what="an active scheduler")
        processes[victim][0].send_signal(signal.SIGKILL)
        processes[victim][0].wait()
        killed_at = dt.datetime.now(dt.UTC)
        wait_for(lambda: (pid := lease_holder_pid(app)) not in (None, victim) and pid, timeout=30, what="a successor")
        wait_for(lambda: len(fires()) >= FIRES, timeout=120, what=f"{FIRES} fires")

    messages = scheduled_messages(redis_client, TICK.queue_name)
    per_fire = Counter((m.schedule, m.scheduled_for) for m in messages)
    doubles = sum(1 for n in per_fire.values() if n > 1)
    catch_up = list(by_schedule(messages)["ticks.catch_up"])
    seconds = [m.scheduled_for for m in catch_up]
    expected = [seconds[0] + n * SECOND for n in range(int((seconds[-1] - seconds[0]) / SECOND) + 1)]
    missing = sorted(set(expected) - set(seconds))
    # The gap: how long after the kill the first fire of a second after it was enqueued.
    enqueue_gaps = [
        b.created_at - a.created_at for a, b in itertools.pairwise(sorted(catch_up, key=lambda m: m.created_at))
    ]
    gap = max(enqueue_gaps)
    Report(
        scenario=f"6 scheduler leader SIGKILL, Redis +{LATENCY_S * 1000:.0f} ms (3 schedulers, 1 s schedules)",
        published=len(messages),
        refused=0,
        applied_once=sum(1 for n in per_fire.values() if n == 1),
        applied_twice=doubles,
        lost=len(missing),
        recover_s=gap.total_seconds(),
        notes=f"fires counted per (schedule, second); time = longest gap between two catch_up enqueues "
        f"(killed at {killed_at:%H:%M:%S})",
    ).write()
    assert doubles == 0
    assert missing == []
    assert gap < GAP_BOUND
