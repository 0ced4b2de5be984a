"""Scenario 5: Redis high availability through Sentinel; the primary SIGKILLed under load.

A primary, two replicas and three sentinels; the publisher and the workers reach
Redis through Sentinel (``REDIS_SENTINELS``) and enqueues wait for one replica
(``REDIS_WAIT_REPLICAS=1``). The primary is killed: the sentinels promote a
replica, every client follows it, and no message the publisher was told was
accepted is lost. The interruption is the longest gap between two accepted
publishes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
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
from tests.chaos.harness import LONG, Load, Report, Workers, count_effects, wait_applied
from tests.support.sentinel import MASTER, SentinelCluster

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not LONG, reason="long form only: make chaos (CHAOS_LONG=1)"),
]


@pytest.fixture
def cluster(tmp_path: Path, env: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(tmp_path / "redis").start()
    for name, value in {
        "REDIS_URL": f"redis://127.0.0.1:{cluster.server_ports[0]}/0",
        "REDIS_SENTINELS": cluster.sentinels,
        "REDIS_SENTINEL_MASTER": MASTER,
        "REDIS_WAIT_REPLICAS": "1",
        "REDIS_WAIT_TIMEOUT_MS": "500",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield cluster
    cluster.stop()
    runtime.reset()


def test_no_accepted_message_is_lost_when_the_primary_dies(
    cluster: SentinelCluster, effects: Engine, tmp_path: Path
) -> None:
    broker: NightshiftRedisBroker = build_broker(runtime.settings(), set_global=False)
    broker.declare_queue("chaossvc_high")
    workers = Workers("chaossvc", 2, tmp_path / "logs")
    try:
        wait_for(lambda: live_workers(broker) >= 2, timeout=60, what="two live workers")
        load = Load(broker, "chaossvc", "failover", rate=40, work_ms=20).start()
        time.sleep(10)
        old_primary = cluster.primary_port()
        cluster.kill(old_primary)
        killed = time.monotonic()
        wait_for(lambda: cluster.primary_port() != old_primary, timeout=60, what="a replica promoted")
        promoted = time.monotonic()
        time.sleep(15)
        load.stop()
        drained = wait_applied(effects, load.accepted, timeout=180)
        assert workers.alive()
    finally:
        workers.stop()
        broker.close()

    gaps = [b - a for a, b in zip(load.accepted_at, load.accepted_at[1:], strict=False)]
    interruption = max(gaps)
    result = count_effects(effects, load.accepted)
    refused = ", ".join(f"{n} {kind}" for kind, n in load.refused.items())
    Report(
        scenario="5 Sentinel failover: primary SIGKILLed (2 replicas, 3 sentinels, WAIT 1)",
        published=len(load.accepted),
        refused=sum(load.refused.values()),
        applied_once=result.once,
        applied_twice=result.twice,
        lost=len(result.lost),
        recover_s=interruption,
        notes=f"time = longest gap between accepted publishes; promotion {promoted - killed:.1f} s after the kill; "
        f"backlog drained {drained - killed:.0f} s after it (15 s of it still loading); refused: {refused or 'none'}",
    ).write()
    assert result.lost == [] and result.twice == 0
    assert redis.Redis(port=cluster.primary_port()).info("replication")["role"] == "master"
