"""``nightshift migrate`` is repeatable and ``nightshift status`` reports real depths."""

from __future__ import annotations

import pytest
import redis

from nightshift.common.contracts.users import SEND_WELCOME_EMAIL
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.redis_keys import RedisKeys
from tests.support.processes import nightshift

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
