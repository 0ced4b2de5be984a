"""``/readyz`` follows Redis going down and coming back; ``/livez`` follows the worker."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.broker import find_middleware
from nightshift.common.health import HealthServer, readiness_check
from nightshift.common.local.embedded import EmbeddedRedis
from nightshift.common.middleware.liveness import WorkerLiveness
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker

pytestmark = pytest.mark.integration


def _get(port: int, path: str) -> tuple[int, dict[str, Any] | str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            body = response.read().decode()
            code = response.status
    except urllib.error.HTTPError as error:
        body, code = error.read().decode(), error.code
    return code, (json.loads(body) if body.startswith("{") else body)


def test_readyz_turns_503_when_redis_dies_and_recovers_without_restart(tmp_path: Path, engine: Engine) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    server = HealthServer(
        host="127.0.0.1",
        port=0,
        liveness=lambda: (True, {}),
        readiness=readiness_check(redis.Redis.from_url(redis_server.url, socket_timeout=1), engine),
    ).start()
    try:
        assert _get(server.port, "/readyz") == (200, {"ok": True, "redis": "ok", "database": "ok"})

        redis_server.stop()
        # The acceptance's bound: 503 within 5 s of Redis going down.
        wait_for(lambda: _get(server.port, "/readyz")[0] == 503, timeout=5, what="503 after Redis died")
        _code, body = _get(server.port, "/readyz")
        assert isinstance(body, dict) and body["redis"].startswith("ConnectionError")

        redis_server = EmbeddedRedis(tmp_path / "redis", port=redis_server.port).start()
        wait_for(lambda: _get(server.port, "/readyz")[0] == 200, timeout=10, what="200 after Redis came back")
    finally:
        server.stop()
        redis_server.stop()


def test_livez_and_metrics_of_a_running_worker(broker: NightshiftRedisBroker, run_worker: Any) -> None:
    liveness: WorkerLiveness = find_middleware(broker, WorkerLiveness)
    server = HealthServer(
        host="127.0.0.1", port=0, liveness=liveness.status, readiness=lambda: (True, {}),
        registries=(broker.metrics_registry,),
    ).start()  # fmt: skip
    try:
        assert _get(server.port, "/livez")[0] == 503  # no worker yet
        worker = run_worker({"testsvc_high"}, threads=2)
        code, body = wait_for(lambda: (r := _get(server.port, "/livez"))[0] == 200 and r, what="live worker")
        assert isinstance(body, dict) and body["worker_threads_alive"] == 2
        worker.stop(timeout=2000)
        assert _get(server.port, "/livez")[0] == 503
        code, text = _get(server.port, "/metrics")
        assert code == 200 and "nightshift_messages_total" in str(text)
    finally:
        server.stop()
