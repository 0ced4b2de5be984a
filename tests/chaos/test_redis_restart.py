"""Scenario 2: Redis restarted under load (append-only file, ``appendfsync everysec``).

A graceful restart (SIGTERM: Redis writes its AOF and exits) and a SIGKILL of
Redis, with two kinds of publishers under load:

* direct: ``events.publish`` (the event ``chaos.requested``) gets a clear
  ``ConnectionError`` naming the server while Redis is away — the task is refused
  at publish, not accepted, nothing half-sent;
* through the outbox: each order row and its event are committed together in
  PostgreSQL (``publish_in_transaction``), so publishing goes on during the
  outage; the relay forwards the rows once Redis is back.

Every accepted task of both is applied exactly once; the same worker processes
consume again once Redis is back, without a restart.

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
from sqlalchemy import Engine, text

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.events.catalog import CATALOG
from nightshift.common.outbox import OutboxRelay
from nightshift.common.processes import wait_for
from nightshift.common.queue_stats import live_workers
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import (
    LONG,
    ChaosRedis,
    Load,
    Report,
    Workers,
    count_effects,
    wait_applied,
    wait_applied_each,
)
from tests.support.chaos_service import REQUESTED, task_message

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
    how: str, chaos_redis: ChaosRedis, effects: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CATALOG, REQUESTED.name, REQUESTED)
    broker: NightshiftRedisBroker = build_broker(runtime.settings(), set_global=False)
    broker.declare_queue("chaossvc_high")
    workers = Workers("chaossvc", 2, tmp_path / "logs")
    relay = OutboxRelay(effects, broker, poll_interval_s=1.0)
    direct = Load(broker, "chaossvc", f"direct-{how}", rate=30, via="publish")
    outbox = Load(broker, "chaossvc", f"outbox-{how}", rate=10, via="outbox", engine=effects)
    stop: Callable[[], None] = chaos_redis.shutdown if how == "graceful" else chaos_redis.kill
    try:
        wait_for(lambda: live_workers(broker) >= 2, timeout=240, what="two live workers")
        pids = [process.pid for process in workers.processes]
        relay.start()
        direct.start()
        outbox.start()
        time.sleep(STEADY_S)
        down = time.monotonic()
        stop()
        time.sleep(OUTAGE_S)
        chaos_redis.start()
        back = time.monotonic()
        probe = f"probe-{how}"
        wait_for(lambda: _enqueue(broker, probe), timeout=30, what="the probe accepted")
        probe_applied = wait_applied(effects, [probe], timeout=120)
        # The orders committed before Redis was back, the outage's included: the relay's catch-up.
        committed = outbox.accepted_between(0, back)
        caught_up = wait_applied(effects, committed, timeout=120)
        time.sleep(STEADY_S)
        direct.stop()
        outbox.stop()
        wait_applied_each(effects, {"direct": direct.accepted, "outbox": outbox.accepted}, timeout=120)
        assert [process.pid for process in workers.processes] == pids and workers.alive()
    finally:
        direct.stop()
        outbox.stop()
        relay.stop()
        workers.stop()
        broker.close()

    during = len(outbox.accepted_between(down, back))
    with effects.connect() as connection:
        unsent = connection.execute(text("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL")).scalar()
        orders = connection.execute(text("SELECT count(*) FROM chaos_orders")).scalar()
    refused = ", ".join(f"{n} {kind}" for kind, n in direct.refused.items())
    rows = {
        "direct publish()": (
            direct,
            probe_applied,
            f"refused at publish: {refused or 'nothing'} ({_messages(direct)}); "
            "same worker processes consumed again; time = Redis back to a new task applied",
        ),
        "outbox": (
            outbox,
            caught_up,
            f"{during} orders committed while Redis was away, relayed after; "
            "time = Redis back to every order committed so far applied",
        ),
    }
    for label, (load, recovered, notes) in rows.items():
        result = count_effects(effects, load.accepted)
        Report(
            scenario=f"2 Redis {how} restart ({OUTAGE_S} s away, AOF everysec): {label}",
            published=len(load.accepted),
            refused=sum(load.refused.values()),
            applied_once=result.once,
            applied_twice=result.twice,
            lost=len(result.lost),
            recover_s=recovered - back,
            notes=notes,
        ).write()
    assert direct.refused and set(direct.refused) <= {"ConnectionError", "TimeoutError", "BusyLoadingError"}
    # A clear error: while Redis is away, it names the server that refused the connection.
    assert any(f"connecting to 127.0.0.1:{chaos_redis.port}" in error for error in direct.errors), direct.errors
    assert not outbox.refused and during > 0
    assert unsent == 0 and orders == len(outbox.accepted)
    for load in (direct, outbox):
        result = count_effects(effects, load.accepted)
        assert result.lost == [] and result.twice == 0
        assert result.once == len(load.accepted)


def _messages(load: Load) -> str:
    """The errors the publisher was told, most frequent first."""
    return "; ".join(f"{n} x {error}" for error, n in load.errors.most_common()) or "no error"


def _enqueue(broker: NightshiftRedisBroker, task_id: str) -> bool:
    try:
        broker.enqueue(task_message("chaossvc", task_id))
    except redis.RedisError:
        return False
    return True
