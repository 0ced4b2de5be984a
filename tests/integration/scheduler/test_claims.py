"""The fenced enqueue: lease check, fire claim and enqueue in one Redis script."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.db.models import JobRecord
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.schedule_control import fire_message_id, fire_options
from nightshift.common.schedules import Schedule
from nightshift.scheduler.claims import CLAIM_PREFIX, ENQUEUED, Claim, FireClaims
from nightshift.scheduler.lease import LeaderLease
from nightshift.scheduler.loop import Scheduler
from tests.support.scheduled_messages import queue_length, scheduled_messages
from tests.support.scheduler_schedules import EVERY_SECOND, TICK

QUEUE = TICK.queue_name

#: How long the test fires stay marked enqueued.
KEEP = dt.timedelta(hours=1)


def _message(name: str, at: dt.datetime) -> dramatiq.Message[Any]:
    """The message of *name*'s fire at *at*, as the scheduler builds it."""
    return TICK.message(
        {"label": name},
        message_id=fire_message_id(name, at),
        options=fire_options(name, scheduled_for=at.isoformat()),
    )


def test_a_fire_is_enqueued_once_with_its_record_and_stays_marked(
    broker: NightshiftRedisBroker, app_redis: redis.Redis[bytes], redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    message_id = fire_message_id("ticks.claims", at)
    assert message_id == fire_message_id("ticks.claims", at.astimezone(dt.timezone(dt.timedelta(hours=1))))
    lease = LeaderLease(app_redis, ttl_ms=5000, owner="a")
    token = lease.attempt()
    assert token is not None
    claims = FireClaims(app_redis, broker)

    first = _message("ticks.claims", at)
    assert claims.enqueue(first, lease=lease, token=token, keep=KEEP) is Claim.ENQUEUED
    # Built again (another tick, another scheduler under the same lease): never written twice.
    again = _message("ticks.claims", at)
    assert claims.enqueue(again, lease=lease, token=token, keep=KEEP) is Claim.DONE

    assert [m.message_id for m in scheduled_messages(redis_client, QUEUE)] == [message_id]
    assert queue_length(redis_client, QUEUE) == 1
    assert app_redis.get(CLAIM_PREFIX + message_id) == ENQUEUED
    assert app_redis.pttl(CLAIM_PREFIX + message_id) > (KEEP - dt.timedelta(minutes=1)).total_seconds() * 1000
    assert claims.enqueued([message_id, "other"]) == {message_id}
    # The script's SELECT of the broker database stayed inside the script.
    holder = lease.holder()
    assert holder is not None and holder.token == token
    assert app_redis.get(CLAIM_PREFIX + message_id) == ENQUEUED
    # The job record's "queued" event, as broker.enqueue writes it.
    with Session(clean_db) as session:
        record = wait_for(lambda: session.get(JobRecord, message_id, populate_existing=True), what="the job record")
    assert record.status == "queued"
    assert record.trigger == "schedule:ticks.claims"


def test_a_leader_whose_lease_moved_on_is_refused_whatever_it_built(
    broker: NightshiftRedisBroker, app_redis: redis.Redis[bytes], redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    claims = FireClaims(app_redis, broker)
    paused = LeaderLease(app_redis, ttl_ms=300, owner="paused")
    old_token = paused.attempt()
    assert old_token is not None
    built = _message("ticks.claims", at)  # built, then the process stops for longer than its lease

    # The lease expires: nobody holds it. The paused leader's message is refused.
    wait_for(lambda: paused.holder() is None, timeout=5, what="the lease to expire")
    assert claims.enqueue(built, lease=paused, token=old_token, keep=KEEP) is Claim.FENCED
    # A successor takes the lease and fires; the paused leader, resumed, is still refused.
    successor = LeaderLease(app_redis, ttl_ms=5000, owner="successor")
    new_token = successor.attempt()
    assert new_token is not None and new_token > old_token
    fresh = _message("ticks.claims", at)
    assert claims.enqueue(fresh, lease=successor, token=new_token, keep=KEEP) is Claim.ENQUEUED
    assert claims.enqueue(built, lease=paused, token=old_token, keep=KEEP) is Claim.FENCED
    # Even under its own name with the old token (the same owner re-elected): the term is checked.
    again = LeaderLease(app_redis, ttl_ms=5000, owner="paused")
    assert claims.enqueue(built, lease=again, token=old_token, keep=KEEP) is Claim.FENCED

    messages = scheduled_messages(redis_client, QUEUE)
    assert [m.message_id for m in messages] == [fire_message_id("ticks.claims", at)]
    assert queue_length(redis_client, QUEUE) == 1
    with Session(clean_db) as session:
        wait_for(lambda: session.get(JobRecord, messages[0].message_id), what="the successor's job record")


def test_an_older_schedulers_claim_holds_the_fire_until_it_lapses(
    broker: NightshiftRedisBroker, app_redis: redis.Redis[bytes], redis_client: redis.Redis[bytes]
) -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    lease = LeaderLease(app_redis, ttl_ms=5000, owner="new")
    token = lease.attempt()
    assert token is not None
    claims = FireClaims(app_redis, broker)
    # A scheduler from before the fenced enqueue (a rolling upgrade) holds the fire.
    app_redis.set(CLAIM_PREFIX + fire_message_id("ticks.claims", at), b"claimed:old|1", px=300)

    assert claims.enqueue(_message("ticks.claims", at), lease=lease, token=token, keep=KEEP) is Claim.PENDING
    assert queue_length(redis_client, QUEUE) == 0
    wait_for(
        lambda: claims.enqueue(_message("ticks.claims", at), lease=lease, token=token, keep=KEEP) is Claim.ENQUEUED,
        timeout=5,
        what="the old claim to lapse",
    )
    assert queue_length(redis_client, QUEUE) == 1


def test_the_fenced_enqueue_writes_what_the_brokers_enqueue_writes(
    broker: NightshiftRedisBroker, app_redis: redis.Redis[bytes], redis_client: redis.Redis[bytes]
) -> None:
    lease = LeaderLease(app_redis, ttl_ms=5000, owner="a")
    token = lease.attempt()
    assert token is not None
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def written() -> dict[bytes, bytes]:
        return {key: redis_client.type(key) for key in redis_client.keys("*")}  # type: ignore[no-untyped-call]

    broker.enqueue(_message("ticks.by_broker", at))
    by_broker = written()
    redis_client.flushdb()
    FireClaims(app_redis, broker).enqueue(_message("ticks.fenced", at), lease=lease, token=token, keep=KEEP)
    assert written() == by_broker
    assert redis_client.llen(broker.keys.wake(QUEUE)) == 1
    # A consumer fetches it like any message.
    [(_, body)] = broker.fetch(QUEUE, 10)
    assert TICK.actor_name.encode() in body and fire_message_id("ticks.fenced", at).encode() in body


def test_the_broker_must_share_the_schedulers_redis_server(broker: NightshiftRedisBroker) -> None:
    elsewhere = redis.Redis.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(ValueError, match="must be one server"):
        FireClaims(elsewhere, broker)


def test_a_scheduler_whose_lease_moved_on_in_redis_enqueues_nothing_and_stands_by(
    broker: NightshiftRedisBroker, app_redis: redis.Redis[bytes], redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    # The lease is held for a while on this process's clock, but Redis has given it to
    # someone else: what a process paused past its lease sees right after resuming.
    lease = LeaderLease(app_redis, ttl_ms=60_000, owner="resumed")
    assert lease.attempt() is not None
    schedule = Schedule("ticks.claims", EVERY_SECOND, TICK, {"label": "claims"}, timezone="UTC")
    scheduler = Scheduler(
        schedules={schedule.name: schedule},
        lease=lease,
        claims=FireClaims(app_redis, broker),
        session_factory=runtime.session_factory(),
        default_timezone="UTC",
        reload_interval=dt.timedelta(seconds=1),
        tolerance=dt.timedelta(milliseconds=500),
    )
    scheduler.tick()
    assert scheduler.status()["role"] == "active"
    app_redis.set(lease.key, b"successor|999", px=60_000)

    def tick_until_refused() -> bool:
        scheduler.tick()  # at the next second a fire falls due: Redis refuses it, the lease is abandoned
        return lease.token() is None

    wait_for(tick_until_refused, timeout=10, what="the fire refused")
    scheduler.tick()
    assert scheduled_messages(redis_client, QUEUE) == []
    assert queue_length(redis_client, QUEUE) == 0
    assert app_redis.keys(CLAIM_PREFIX + "*") == []
    assert lease.token() is None
    assert scheduler.status()["role"] == "standby"
