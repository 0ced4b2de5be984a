"""The scheduler's fenced script enqueues signed fires, which a worker accepts."""

from __future__ import annotations

import datetime as dt

import pytest
import redis
from dramatiq import Message

from nightshift.common import runtime
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.schedule_control import fire_message_id, fire_options
from nightshift.common.signing import MessageSigner
from nightshift.scheduler.claims import Claim, FireClaims
from nightshift.scheduler.lease import LeaderLease
from tests.support.scheduler_schedules import TICK

pytestmark = pytest.mark.integration


def test_a_fire_enqueued_by_the_fenced_script_carries_a_valid_signature(
    broker: NightshiftRedisBroker, app_redis: redis.Redis[bytes]
) -> None:
    lease = LeaderLease(app_redis, ttl_ms=5000, owner="a")
    token = lease.attempt()
    assert token is not None
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    message = TICK.message(
        {"label": "signed"},
        message_id=fire_message_id("ticks.signed", at),
        options=fire_options("ticks.signed", scheduled_for=at.isoformat()),
    )
    claims = FireClaims(app_redis, broker)
    assert claims.enqueue(message, lease=lease, token=token, keep=dt.timedelta(hours=1)) is Claim.ENQUEUED

    [(_, body)] = broker.fetch(TICK.queue_name, 10)
    fired = Message.decode(body)
    signer = MessageSigner(runtime.settings().signing_keys())
    assert signer.verify(fired).key_id == runtime.settings().signing_keys().current.key_id
