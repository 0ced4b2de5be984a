"""Scenario 4: PostgreSQL unreachable for 30 s under load (the workers reach it through a proxy that is cut).

Tasks that need the database fail and retry on their schedule (here 1 s, 5 s,
25 s, 25 s: longer than the outage) and are applied once it is back; every
task's job record, kept in the workers' memory meanwhile, is written afterwards.
The case of an outage outlasting the memory buffer (records spilled to disk, or
back-pressure) is ``tests/integration/common/test_record_spill.py``; the
workers here run with ``RECORD_SPILL_DIR`` set, as a production deployment would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.processes import wait_for
from nightshift.common.queue_stats import live_workers
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import LONG, Load, Report, Workers, count_effects, wait_applied
from tests.support.tcp_proxy import TcpProxy, postgres_target, through_proxy

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not LONG, reason="long form only: make chaos (CHAOS_LONG=1)"),
]

OUTAGE_S = 30


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(postgres_target(database_url)).start()
    yield proxy
    proxy.close()


def test_tasks_and_job_records_survive_a_postgres_outage(
    env: CommonSettings,
    broker: NightshiftRedisBroker,
    effects: Engine,
    database_url: str,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    worker_env = {
        "DATABASE_URL": through_proxy(database_url, proxy),
        "RETRY_DELAYS_MS": "[1000,5000,25000,25000]",
        "RECORD_SPILL_DIR": str(tmp_path / "spill"),
    }
    workers = Workers("chaossvc", 2, tmp_path / "logs", env=worker_env)
    try:
        wait_for(lambda: live_workers(broker) >= 2, timeout=60, what="two live workers")
        load = Load(broker, "chaossvc", "pg", rate=20, work_ms=20).start()
        time.sleep(10)
        proxy.sever()
        time.sleep(OUTAGE_S)
        proxy.heal()
        healed = time.monotonic()
        time.sleep(10)
        load.stop()
        drained = wait_applied(effects, load.accepted, timeout=180)

        def records_written() -> bool:
            with effects.connect() as connection:
                done = connection.execute(
                    text("SELECT count(*) FROM job_records WHERE actor = 'chaossvc_apply' AND status = 'done'")
                ).scalar_one()
            return int(done) == len(load.accepted)

        wait_for(records_written, timeout=60, what="a done job record for every task")
        assert workers.alive()
    finally:
        workers.stop()

    result = count_effects(effects, load.accepted)
    with effects.connect() as connection:
        retried = connection.execute(
            text("SELECT count(*) FROM job_records WHERE actor = 'chaossvc_apply' AND attempts > 1")
        ).scalar_one()
    Report(
        scenario=f"4 PostgreSQL unreachable {OUTAGE_S} s",
        published=len(load.accepted),
        refused=sum(load.refused.values()),
        applied_once=result.once,
        applied_twice=result.twice,
        lost=len(result.lost),
        recover_s=drained - healed,
        notes=f"{retried} tasks retried through the outage; a done job record for every task, written afterwards",
    ).write()
    assert list_dead_letters(broker, "chaossvc_high") == []
    assert result.lost == [] and result.twice == 0
