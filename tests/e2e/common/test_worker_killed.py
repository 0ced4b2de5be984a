"""A worker killed with SIGKILL mid-task loses nothing: another worker processes the message."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import redis
from dramatiq import Message

from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.support.processes import service_process
from tests.support.slow_service import EVENTS_KEY

pytestmark = pytest.mark.e2e


def _events(client: redis.Redis[bytes]) -> list[tuple[str, str, int, float]]:
    rows = []
    for raw in client.lrange(EVENTS_KEY, 0, -1):
        what, job, pid, at = raw.decode().split()
        rows.append((what, job, int(pid), float(at)))
    return rows


def test_message_of_a_killed_worker_is_redelivered_to_another(
    env: CommonSettings, broker: NightshiftRedisBroker, tmp_path: Path
) -> None:
    app = redis.Redis.from_url(env.redis_url)
    command = ["-m", "tests.support.slow_service"]
    with service_process(command, tmp_path / "a.log") as first:
        broker.enqueue(
            Message(
                queue_name="slowsvc_high",
                actor_name="slow_job",
                args=(),
                kwargs={"job_id": "j1", "seconds": 3},
                options={},
            )
        )
        wait_for(lambda: ("started", "j1", first.pid) in [e[:3] for e in _events(app)], timeout=30, what="first start")
        with service_process(command, tmp_path / "b.log") as second:
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed_at = time.time()
            wait_for(
                lambda: ("done", "j1", second.pid) in [e[:3] for e in _events(app)], timeout=30, what="done by second"
            )

    events = _events(app)
    assert [(what, pid) for what, _, pid, _ in events] == [
        ("started", first.pid),
        ("started", second.pid),
        ("done", second.pid),
    ]
    redelivered_after = events[1][3] - killed_at
    print(f"redelivered {redelivered_after:.2f} s after SIGKILL (heartbeat timeout {env.heartbeat_timeout_ms} ms)")
