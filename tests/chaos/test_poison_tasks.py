"""Scenario 7: poison tasks in the memory-bound profile are contained.

A task that crashes the interpreter (a segfault), one that leaks memory until
the limit and one that never returns (blocked in C, where ``TimeLimitExceeded``
cannot land) each end their process, which the pool replaces; after its
attempts each is dead-lettered with ``ProcessDied`` and the cause, and the
other messages of the same workers are all applied once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.chaos.harness import LONG, Report, Workers, count_effects, wait_applied
from tests.support.chaos_service import RUNS_KEY, task_message

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

#: Ordinary tasks published beside the poison ones.
ORDINARY = 200 if LONG else 40
#: The poison actors and what their dead letter must say.
POISON = {
    "segfault": "killed, or crashed in native code",
    "leak": "memory limit: resident",
    "hang": "hung: still running",
}


def test_segfault_leak_and_hang_are_dead_lettered_and_the_rest_is_processed(
    env: CommonSettings, broker: NightshiftRedisBroker, effects: Engine, tmp_path: Path
) -> None:
    broker.declare_queue("chaosmem_high")
    pool = Workers("chaosmem", 1, tmp_path / "logs", mode="pool")
    app = redis.Redis.from_url(env.redis_url)
    try:
        started = time.monotonic()
        poison = {kind: broker.enqueue(task_message("chaosmem", f"poison-{kind}", actor=kind)) for kind in POISON}
        ordinary = [f"ordinary-{n}" for n in range(ORDINARY)]
        for task in ordinary:
            broker.enqueue(task_message("chaosmem", task, work_ms=20))

        def dead() -> dict[str, str]:
            letters = list_dead_letters(broker, "chaosmem_high")
            return {letter.job_id or "": f"{letter.error_type}: {letter.reason}" for letter in letters}

        wait_for(lambda: len(dead()) == len(POISON), timeout=420, interval=0.5, what="three dead letters")
        contained = time.monotonic()
        wait_applied(effects, ordinary, timeout=120)
        assert pool.alive()
    finally:
        pool.stop()

    reasons = dead()
    for kind, expected in POISON.items():
        reason = reasons[poison[kind].message_id]
        assert reason.startswith("ProcessDied: the worker process died 4 times"), reason
        assert expected in reason, reason
        assert int(app.hget(RUNS_KEY, f"poison-{kind}") or 0) == 4
    result = count_effects(effects, ordinary)
    assert result.lost == [] and result.twice == 0
    Report(
        scenario="7 poison tasks: segfault, leak to 300 MB, hang (memory-bound pool of 2)",
        published=len(ordinary) + len(POISON),
        refused=0,
        applied_once=result.once,
        applied_twice=result.twice,
        lost=len(result.lost),
        recover_s=contained - started,
        notes="3 dead-lettered with ProcessDied after 4 attempts each (cause in the reason); "
        "time = until all three were dead-lettered",
    ).write()
