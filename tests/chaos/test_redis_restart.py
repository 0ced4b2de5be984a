"""Scenario 2: Redis restarted under load (append-only file, ``appendfsync everysec``).

A graceful restart (SIGTERM: Redis writes its AOF and exits) and a SIGKILL of
Redis. Publishers get a clear ``ConnectionError`` while Redis is away (the task
is not accepted: nothing is half-sent); every accepted task is applied exactly
once; the same worker processes consume again once Redis is back, without a
restart.

What a SIGKILL can lose with ``everysec``: Redis writes the AOF buffer to the
kernel (``write(2)``) before it replies to a command, and fsyncs once a second.
Killing the *process* leaves the written data in the page cache, so nothing
acknowledged is lost — measured below as 0. Losing the *machine* (kernel panic,
power) loses what was not yet fsynced: up to about a second of writes (two when
the disk is slow and Redis postpones a write behind a running fsync).
``appendfsync always`` closes that window at the cost of an fsync per write;
scenario 5 (Sentinel, ``WAIT``) is the answer for losing a machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.processes import wait_for
from nightshift.common.queue_stats import live_workers
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import LONG, ChaosRedis, Load, Report, Workers, count_effects, wait_applied
from tests.support.chaos_service import task_message

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

#: How long Redis stays away each time.
OUTAGE_S = 10 if LONG else 3
#: Load before and after each fault.
STEADY_S = 20 if LONG else 4


@pytest.fixture
def chaos_redis(tmp_path: Path, env: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChaosRedis]:
    """A Redis of this test's own (AOF on), which REDIS_URL points at for the test and its workers."""
    server = ChaosRedis(tmp_path / "redis").start()
    monkeypatch.setenv("REDIS_URL", server.url)
    runtime.reset()
    yield server
    server.stop()
    runtime.reset()


@pytest.mark.parametrize("how", ["graceful", "sigkill"])
def test_workers_resume_and_nothing_accepted_is_lost_when_redis_restarts(
    how: str, chaos_redis: ChaosRedis, effects: Engine, tmp_path: Path
) -> None:
    broker: NightshiftRedisBroker = build_broker(runtime.settings(), set_global=False)
    broker.declare_queue("chaossvc_high")
    workers = Workers("chaossvc", 2, tmp_path / "logs")
    stop: Callable[[], None] = chaos_redis.shutdown if how == "graceful" else chaos_redis.kill
    try:
        wait_for(lambda: live_workers(broker) >= 2, timeout=60, what="two live workers")
        pids = [process.pid for process in workers.processes]
        load = Load(broker, "chaossvc", f"redis-{how}", rate=40, work_ms=20).start()
        time.sleep(STEADY_S)
        stop()
        time.sleep(OUTAGE_S)
        chaos_redis.start()
        back = time.monotonic()
        probe = f"probe-{how}"
        wait_for(lambda: _enqueue(broker, probe), timeout=30, what="the probe accepted")
        probe_applied = wait_applied(effects, [probe], timeout=120)
        time.sleep(STEADY_S)
        load.stop()
        wait_applied(effects, load.accepted, timeout=120)
        assert [process.pid for process in workers.processes] == pids and workers.alive()
    finally:
        workers.stop()
        broker.close()

    result = count_effects(effects, load.accepted)
    refused = ", ".join(f"{n} {kind}" for kind, n in load.refused.items())
    Report(
        scenario=f"2 Redis {how} restart ({OUTAGE_S} s away, AOF everysec)",
        published=len(load.accepted),
        refused=sum(load.refused.values()),
        applied_once=result.once,
        applied_twice=result.twice,
        lost=len(result.lost),
        recover_s=probe_applied - back,
        notes=f"publishers refused with {refused or 'nothing'}; same worker processes consumed again",
    ).write()
    assert load.refused and set(load.refused) <= {"ConnectionError", "TimeoutError", "BusyLoadingError"}
    assert result.lost == []
    assert result.twice == 0


def _enqueue(broker: NightshiftRedisBroker, task_id: str) -> bool:
    try:
        broker.enqueue(task_message("chaossvc", task_id))
    except redis.RedisError:
        return False
    return True
