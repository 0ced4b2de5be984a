"""``nightshift migrate`` is repeatable and ``nightshift status`` reports real depths."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from nightshift.common.broker import build_broker
from nightshift.common.contracts.users import SEND_WELCOME_EMAIL
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.redis_keys import RedisKeys
from nightshift.common.settings import CommonSettings, load_settings
from tests.support.processes import nightshift
from tests.support.sentinel import SentinelCluster

pytestmark = pytest.mark.integration


def test_migrate_twice_is_a_no_op(broker: NightshiftRedisBroker) -> None:
    for _ in range(2):
        result = nightshift("migrate")
        assert result.returncode == 0, result.stderr
        assert "database is up to date" in result.stdout


def test_status_shows_ready_and_dead_messages(broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]) -> None:
    for user_id in (1, 2, 3):
        SEND_WELCOME_EMAIL.send({"user_id": user_id}, broker=broker)
    redis_client.zadd(RedisKeys().dead("users_low"), {"dead-1": 1})
    broker.record_writer.flush()

    result = nightshift("status")

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("users_")}
    assert rows["users_high"] == ["3", "0", "0", "0"]
    assert rows["users_low"] == ["0", "0", "0", "1"]
    assert "queued 3" in result.stdout


def test_status_finds_redis_through_sentinel(broker: NightshiftRedisBroker, tmp_path: Path) -> None:
    cluster = SentinelCluster(tmp_path / "sentinel", replicas=0, sentinels=1).start()
    try:
        through_sentinel = build_broker(_sentinel_settings(cluster), set_global=False)
        SEND_WELCOME_EMAIL.send({"user_id": 1}, broker=through_sentinel)
        through_sentinel.close()
        # REDIS_URL's host and port lead nowhere: only the sentinel knows where the primary is.
        result = nightshift("status", env={"REDIS_SENTINELS": cluster.sentinels, "REDIS_URL": "redis://127.0.0.1:9/0"})
    finally:
        cluster.stop()

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("users_")}
    assert rows["users_high"] == ["1", "0", "0", "0"]


def _sentinel_settings(cluster: SentinelCluster) -> CommonSettings:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REDIS_SENTINELS", cluster.sentinels)
        patch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
        return load_settings(CommonSettings)
