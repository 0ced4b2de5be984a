"""The CPU-bound profile: a supervised pool of single-threaded, prefetch-1 worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nightshift.common import runtime
from nightshift.common.processes import wait_for
from nightshift.common.queue_stats import live_workers
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.integration.media.conftest import Uploads, wait_for_jobs
from tests.unit.media.images import encode, halves

pytestmark = pytest.mark.integration

POOL = (
    "import sys\n"
    "from nightshift.common.service import get_service\n"
    "from nightshift.common.worker_pool import run_worker_pool\n"
    "sys.exit(run_worker_pool(get_service('media'), processes=2, health_port=0, check_interval_s=0.1))\n"
)


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(child) for child in path.read_text().split()} if path.exists() else set()


def _environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().partition("=")[::2] for entry in entries if b"=" in entry)


def test_pool_serves_restarts_dead_children_and_stops_on_sigterm(
    env: CommonSettings, broker: NightshiftRedisBroker, clean_db: Engine
) -> None:
    uploads = Uploads(clean_db, runtime.storage())
    parent = subprocess.Popen([sys.executable, "-c", POOL], env=dict(os.environ))
    try:
        first = wait_for(lambda: len(_children(parent.pid)) == 2 and _children(parent.pid), what="two children")
        wait_for(lambda: live_workers(broker) == 2, timeout=30, what="two live workers")
        for pid in first:
            assert _environment(pid)["dramatiq_queue_prefetch"] == "1"
            assert "--threads\x001\x00" in Path(f"/proc/{pid}/cmdline").read_text()

        media_id = uploads.add(encode(halves(400, 300), "JPEG"))
        assert [r.status for r in wait_for_jobs(broker, clean_db, [uploads.publish(media_id)]).values()] == ["done"]

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(
            lambda: len(now := _children(parent.pid)) == 2 and victim not in now and now,
            timeout=15,
            what="the killed child to be replaced",
        )
        assert replaced - first and (first - {victim}) <= replaced

        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
        for pid in replaced:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
