"""The memory-bound profile: one message at a time, each process replaced after its task count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, text

from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.support.chaos_service import PIDS_KEY, ensure_tables, task_message
from tests.support.processes import child_env

pytestmark = pytest.mark.e2e


def test_a_process_is_replaced_after_its_task_count_and_runs_one_message_at_a_time(
    env: CommonSettings, broker: NightshiftRedisBroker, clean_db: Engine, tmp_path: Path
) -> None:
    ensure_tables(clean_db)
    app = redis.Redis.from_url(env.redis_url)
    extra = {"CHAOSMEM_MAX_TASKS_PER_PROCESS": "3", "CHAOSMEM_PROCESSES": "1"}
    with open(tmp_path / "pool.log", "ab") as log:
        pool = subprocess.Popen(
            [sys.executable, "-m", "tests.support.chaos_service", "pool", "chaosmem"],
            env=child_env(extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        tasks = [f"recycle-{n}" for n in range(7)]
        for task in tasks:
            broker.enqueue(task_message("chaosmem", task, work_ms=50))

        def applied() -> int:
            with clean_db.connect() as connection:
                return int(connection.execute(text("SELECT count(*) FROM chaos_effects")).scalar_one())

        wait_for(lambda: applied() == len(tasks), timeout=90, what="seven effects applied")
        with clean_db.connect() as connection:
            rows = connection.execute(text("SELECT task_id, pid FROM chaos_effects ORDER BY applied_at")).all()
        assert sorted(task for task, _ in rows) == sorted(tasks)
        per_process = Counter(pid for _, pid in rows)
        assert sorted(per_process.values()) == [1, 3, 3]
        assert {int(pid) for pid in app.hvals(PIDS_KEY)} == set(per_process)
        assert pool.poll() is None
    finally:
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=60) == 0
    log_text = (tmp_path / "pool.log").read_text()
    assert "ran 3 messages (max_tasks 3)" in log_text
    assert os.getpid() not in per_process
