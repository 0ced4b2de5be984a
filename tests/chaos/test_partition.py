"""Scenario 3: a network partition between the workers and Redis (a TCP proxy that stalls).

During the partition nothing moves and the publishers, which reach Redis
directly, keep publishing; after it heals, every worker consumes again without a
restart. During a long one, ``/livez`` fails (the heartbeat cannot be written)
so an orchestrator would restart the process — and answers again once it heals.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import Engine, text

from nightshift.common.processes import wait_for
from nightshift.common.queue_stats import live_workers
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import LONG, Load, Report, Workers, count_effects, wait_applied
from tests.support.chaos_service import task_message
from tests.support.tcp_proxy import TcpProxy

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not LONG, reason="long form only: make chaos (CHAOS_LONG=1)"),
]

#: A short partition (below the liveness limit) and a long one (well past it).
SHORT_S, LONG_S = 5, 30


@pytest.fixture
def proxy(env: CommonSettings) -> Iterator[TcpProxy]:
    address = urlparse(env.redis_url)
    proxy = TcpProxy((address.hostname or "127.0.0.1", address.port or 6379)).start()
    yield proxy
    proxy.close()


def test_workers_consume_again_after_partitions_and_livez_fails_during_a_long_one(
    env: CommonSettings, broker: NightshiftRedisBroker, effects: Engine, proxy: TcpProxy, tmp_path: Path
) -> None:
    worker_redis = f"redis://127.0.0.1:{proxy.port}/0"
    workers = Workers("chaossvc", 2, tmp_path / "logs", env={"REDIS_URL": worker_redis})
    notes = []
    try:
        wait_for(lambda: live_workers(broker) >= 2, timeout=60, what="two live workers")
        wait_for(lambda: all(workers.livez(i) for i in range(2)), timeout=30, what="/livez answering")
        pids = [process.pid for process in workers.processes]
        load = Load(broker, "chaossvc", "partition", rate=20, work_ms=20).start()
        recoveries = []
        for length in (SHORT_S, LONG_S):
            time.sleep(5)
            proxy.blackhole()
            cut = time.monotonic()
            livez_failed_after = None
            while time.monotonic() - cut < length:
                if livez_failed_after is None and not any(workers.livez(i) for i in range(2)):
                    livez_failed_after = time.monotonic() - cut
                time.sleep(0.5)
            proxy.heal()
            healed = time.monotonic()
            # Every worker applies a task published after the heal: each one consumes again.
            marker = f"after-{length}"
            for n in range(40):
                broker.enqueue(task_message("chaossvc", f"{marker}-{n}", work_ms=100))
            wait_for(partial(_applied_by_all, effects, marker, set(pids)), timeout=60, what="both workers consuming")
            recoveries.append(time.monotonic() - healed)
            wait_for(lambda: all(workers.livez(i) for i in range(2)), timeout=30, what="/livez again")
            notes.append(
                f"{length} s cut: /livez failed after {livez_failed_after or 0:.0f} s"
                if livez_failed_after
                else f"{length} s cut: /livez kept answering"
            )
            if length == LONG_S:
                assert livez_failed_after is not None
        load.stop()
        wait_applied(effects, load.accepted, timeout=120)
        assert [process.pid for process in workers.processes] == pids and workers.alive()
    finally:
        workers.stop()

    result = count_effects(effects, load.accepted)
    Report(
        scenario=f"3 partition workers-Redis ({SHORT_S} s, then {LONG_S} s stalled)",
        published=len(load.accepted),
        refused=sum(load.refused.values()),
        applied_once=result.once,
        applied_twice=result.twice,
        lost=len(result.lost),
        recover_s=max(recoveries),
        notes="; ".join(notes) + "; both workers consumed again without restart",
    ).write()
    assert result.lost == [] and result.twice == 0


def _applied_by_all(engine: Engine, prefix: str, pids: set[int]) -> bool:
    """Whether each of *pids* applied a task whose id starts with *prefix*."""
    with engine.connect() as connection:
        query = text("SELECT DISTINCT pid FROM chaos_effects WHERE task_id LIKE :prefix")
        return set(connection.execute(query, {"prefix": f"{prefix}-%"}).scalars()) >= pids
