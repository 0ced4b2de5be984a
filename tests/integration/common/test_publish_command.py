"""``nightshift publish`` refuses bad events before anything reaches Redis."""

from __future__ import annotations

import pytest
import redis

from nightshift.common.redis_keys import RedisKeys
from nightshift.common.settings import CommonSettings
from tests.support.processes import nightshift

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("user.registred", '{"user_id": 1}', "unknown event 'user.registred'"),
        ("user.registered", '{"user_id": "abc"}', "user_id: Input should be a valid integer"),
        ("user.registered", '{"user_id": 1, "email": "a@b.c"}', "email: Extra inputs are not permitted"),
        ("user.registered", "{}", "user_id: Field required"),
        ("user.registered", "[1]", "payload must be a JSON object"),
        ("user.registered", "{not json", "PAYLOAD is not valid JSON"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_enqueued(
    env: CommonSettings, redis_client: redis.Redis[bytes], event: str, payload: str, expected: str
) -> None:
    result = nightshift("publish", event, payload)

    assert result.returncode != 0
    assert expected in result.stderr
    assert redis_client.dbsize() == 0
    assert redis.Redis.from_url(env.redis_url).dbsize() == 0


def test_a_valid_event_is_enqueued_once_per_subscriber(env: CommonSettings, redis_client: redis.Redis[bytes]) -> None:
    result = nightshift("publish", "user.registered", '{"user_id": 7}')

    assert result.returncode == 0, result.stderr
    assert "send_welcome_email -> users_high" in result.stdout
    assert redis_client.llen(RedisKeys().queue("users_high")) == 1
