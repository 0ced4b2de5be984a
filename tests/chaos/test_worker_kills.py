"""Scenario 1: worker processes SIGKILLed at random under steady load lose nothing and apply nothing twice."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.processes import wait_for
from nightshift.common.queue_stats import live_workers
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import LONG, Load, Report, Workers, count_effects, wait_applied
from tests.support.chaos_service import RUNS_KEY

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

#: How long kills go on: several minutes in the long form, a short burst in ``make test``.
DURATION_S = 180 if LONG else 20


def test_random_worker_sigkills_lose_no_task(
    env: CommonSettings, broker: NightshiftRedisBroker, effects: Engine, tmp_path: Path
) -> None:
    workers = Workers("chaossvc", 3, tmp_path / "logs")
    try:
        wait_for(lambda: live_workers(broker) >= 3, timeout=60, what="three live workers")
        load = Load(broker, "chaossvc", "kill", rate=40, work_ms=50).start()
        chance = random.Random(16)  # a reproducible schedule
        kills = 0
        deadline = time.monotonic() + DURATION_S
        while time.monotonic() < deadline:
            time.sleep(chance.uniform(2, 4))
            workers.kill(chance.randrange(len(workers.processes)))
            kills += 1
        last_kill = time.monotonic()
        load.stop()
        drained = wait_applied(effects, load.accepted, timeout=120)
    finally:
        workers.stop()

    result = count_effects(effects, load.accepted)
    runs = sum(int(n) for n in redis.Redis.from_url(env.redis_url).hvals(RUNS_KEY))
    Report(
        scenario=f"1 worker SIGKILL x{kills} ({DURATION_S} s, 3 workers)",
        published=len(load.accepted),
        refused=sum(load.refused.values()),
        applied_once=result.once,
        applied_twice=result.twice,
        lost=len(result.lost),
        recover_s=drained - last_kill,
        notes=f"{runs - len(load.accepted)} redeliveries absorbed by idempotency",
    ).write()
    assert kills >= 4
    assert not load.refused
    assert result.lost == []
    assert result.twice == 0
    assert result.once == len(load.accepted)
