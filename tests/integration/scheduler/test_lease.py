"""The leader lease and fencing on real Redis and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightshift.common import schedule_control
from nightshift.common.db.engine import make_session_factory, transaction
from nightshift.common.processes import wait_for
from nightshift.scheduler import store
from nightshift.scheduler.lease import LeaderLease
from tests.support.scheduler_schedules import SCHEDULES


def test_one_holder_at_a_time_and_each_term_has_a_larger_token(app_redis: redis.Redis[bytes]) -> None:
    first = LeaderLease(app_redis, ttl_ms=300, owner="first")
    second = LeaderLease(app_redis, ttl_ms=300, owner="second")

    token = first.attempt()
    assert token is not None
    assert second.attempt() is None
    assert first.holder() == second.holder()
    assert first.attempt() == token  # a renewal keeps the token

    # The holder dies (stops renewing): the lease expires and the other takes it with a larger token.
    later = wait_for(lambda: second.attempt(), timeout=5, what="the takeover")
    assert later > token
    assert first.token() is None
    assert first.attempt() is None

    # A clean stop hands over at once.
    second.stop()
    assert wait_for(lambda: first.attempt(), timeout=1, what="the handover") > later


def test_a_write_under_an_older_token_is_refused(clean_db: Engine) -> None:
    factory = make_session_factory(clean_db)
    now = dt.datetime.now(dt.UTC)
    with transaction(factory) as session:
        store.sync_declared(session, {s.name: s for s in SCHEDULES}, default_timezone="UTC", now=now)
    name = SCHEDULES[0].name

    with transaction(factory) as session:
        assert store.advance(session, name, token=7, handled_through=now + dt.timedelta(seconds=5), fired=None)
    with transaction(factory) as session:
        assert not store.advance(session, name, token=6, handled_through=now + dt.timedelta(seconds=9), fired=None)

    with Session(clean_db) as session:
        row = schedule_control.get(session, name)
    assert row.fencing_token == 7
    assert row.handled_through == now + dt.timedelta(seconds=5)
