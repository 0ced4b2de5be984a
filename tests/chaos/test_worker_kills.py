"""Scenario 1: worker processes of several services SIGKILLed at random under steady load lose nothing.

Three services on queues of their own, each under its own load: ``chaossvc``
and ``chaosalt`` (threaded workers, replaced by the test as an orchestrator
would) and ``chaosmem`` (a memory-bound pool, whose supervisor replaces the
child killed under it). Every few seconds one worker process is SIGKILLed, the
services taken in turn; the table has a row per service.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.processes import wait_for
from nightshift.common.queue_stats import live_workers
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import LONG, Load, Report, Workers, count_effects, wait_applied_each
from tests.support.chaos_service import RUNS_KEY

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

#: How long kills go on: several minutes in the long form, a short burst in ``make test``.
DURATION_S = 180 if LONG else 20


@dataclass(frozen=True)
class Target:
    """A service under load whose workers are killed."""

    service: str
    mode: str  # "worker": processes the test replaces; "pool": one pool, which replaces its children
    processes: int
    rate: float

    @property
    def label(self) -> str:
        if self.mode == "pool":
            return f"{self.service}, memory-bound pool of 2"
        return f"{self.service}, {self.processes} worker{'s' if self.processes > 1 else ''}"


TARGETS = (
    Target("chaossvc", "worker", 2, 20),
    Target("chaosalt", "worker", 2 if LONG else 1, 12),
    Target("chaosmem", "pool", 1, 4),
)
#: Worker processes in all (a pool of chaosmem runs two).
PROCESSES = sum(t.processes for t in TARGETS if t.mode == "worker") + 2
#: The pool's children are killed, not recycled: each kill is then one replacement (recycling
#: every 20 tasks is scenario 7's business).
POOL_ENV = {"CHAOSMEM_MAX_TASKS_PER_PROCESS": "100000"}


def test_random_worker_sigkills_across_services_lose_no_task(
    env: CommonSettings, broker: NightshiftRedisBroker, effects: Engine, tmp_path: Path
) -> None:
    for target in TARGETS:
        broker.declare_queue(f"{target.service}_high")
    workers = {
        t.service: Workers(t.service, t.processes, tmp_path / "logs", mode=t.mode, env=POOL_ENV) for t in TARGETS
    }
    loads: dict[str, Load] = {}
    kills = dict.fromkeys(workers, 0)
    try:
        wait_for(lambda: live_workers(broker) >= PROCESSES, timeout=240, what=f"{PROCESSES} live workers")
        for target in TARGETS:
            loads[target.service] = Load(broker, target.service, f"kill-{target.service}", rate=target.rate)
            loads[target.service].start()
        chance = random.Random(16)  # a reproducible schedule
        deadline = time.monotonic() + DURATION_S
        turn = 0
        while time.monotonic() < deadline:
            time.sleep(chance.uniform(2, 4))
            target = TARGETS[turn % len(TARGETS)]
            turn += 1
            group = workers[target.service]
            if target.mode == "pool":
                killed = group.kill_child(0, chance.choice)
            else:
                group.kill(chance.randrange(target.processes))
                killed = True
            kills[target.service] += killed
        last_kill = time.monotonic()
        for load in loads.values():
            load.stop()
        drained = wait_applied_each(effects, {name: load.accepted for name, load in loads.items()}, timeout=180)
    finally:
        for load in loads.values():
            load.stop()
        for group in workers.values():
            group.stop()

    runs = {key.decode(): int(value) for key, value in redis.Redis.from_url(env.redis_url).hgetall(RUNS_KEY).items()}
    results = {name: count_effects(effects, load.accepted) for name, load in loads.items()}
    for target in TARGETS:
        load, result = loads[target.service], results[target.service]
        ran = sum(runs.get(task, 0) for task in load.accepted)
        Report(
            scenario=f"1 worker SIGKILL x{kills[target.service]} ({DURATION_S} s; {target.label})",
            published=len(load.accepted),
            refused=sum(load.refused.values()),
            applied_once=result.once,
            applied_twice=result.twice,
            lost=len(result.lost),
            recover_s=drained[target.service] - last_kill,
            notes=f"{ran - len(load.accepted)} redeliveries absorbed by idempotency; "
            f"{sum(kills.values())} kills across 3 services",
        ).write()
    assert sum(kills.values()) >= 4
    assert all(kills.values()), kills  # every service lost workers
    for name, load in loads.items():
        result = results[name]
        assert not load.refused, (name, load.errors)
        assert result.lost == [], name
        assert result.twice == 0, name
        assert result.once == len(load.accepted) > 0, name
