"""The welcome flow through real processes: CLI publish -> users worker -> outbox -> notifications worker.

One email per user ever, nothing personal in Redis, and one trace across the three processes
exported over OTLP.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from nightshift.common.db.models import JobRecord, User
from nightshift.common.processes import wait_for
from nightshift.common.settings import CommonSettings
from nightshift.notifications.models import EmailDelivery
from tests.support.otlp_receiver import otlp_receiver
from tests.support.processes import nightshift, service_process

pytestmark = pytest.mark.e2e

EMAIL = "grace.hopper@example.org"
NAME = "Grace Brewster Hopper"


def _redis_values(client: redis.Redis[bytes]) -> list[bytes]:
    """Every key and value stored in *client*'s database, whatever their types."""
    found: list[bytes] = []
    for key in client.scan_iter(count=1000):
        found.append(key)
        kind = client.type(key).decode()  # type: ignore[no-untyped-call]
        if kind == "string":
            found.append(client.get(key) or b"")
        elif kind == "hash":
            for field, value in client.hgetall(key).items():
                found += [field, value]
        elif kind == "list":
            found += client.lrange(key, 0, -1)
        elif kind == "set":
            found += list(client.smembers(key))
        elif kind == "zset":
            found += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
    return found


def test_one_welcome_email_per_user_no_personal_data_in_redis_one_trace(
    env: CommonSettings, redis_client: redis.Redis[bytes], clean_db: Engine, tmp_path: Path
) -> None:
    with Session(clean_db) as session, session.begin():
        user = User(email=EMAIL, display_name=NAME, locale="fr")
        session.add(user)
        session.flush()
        user_id = user.id
    outbox = Path(env.outbox_dir)

    with otlp_receiver() as (endpoint, spans):
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        workers = [
            ["-m", "nightshift.common.cli", "worker", name, "--health-port", "0"] for name in ("users", "notifications")
        ]
        with (
            service_process(workers[0], tmp_path / "users.log", otel),
            service_process(workers[1], tmp_path / "notifications.log", otel),
        ):
            started = time.monotonic()
            published = nightshift("publish", "user.registered", f'{{"user_id": {user_id}}}', env=otel)
            assert published.returncode == 0, published.stderr
            wait_for(lambda: list(outbox.glob("*.eml")), timeout=30, what="the welcome email")
            print(f"welcome email in the outbox {time.monotonic() - started:.2f} s after `nightshift publish` started")

            again = nightshift("publish", "user.registered", f'{{"user_id": {user_id}}}', env=otel)
            assert again.returncode == 0, again.stderr

            def welcome_jobs_done() -> bool:
                with Session(clean_db) as session:
                    return (
                        session.scalar(
                            select(func.count()).where(
                                JobRecord.actor == "send_welcome_email", JobRecord.status == "done"
                            )
                        )
                        == 2
                    )

            wait_for(welcome_jobs_done, timeout=20, what="both user.registered messages processed")
            scanned = _redis_values(redis_client) + _redis_values(redis.Redis.from_url(env.redis_url))
        # Workers stopped: their spans are flushed at exit.
        wait_for(
            lambda: {s.service for s in spans} >= {"nightshift-cli", "nightshift-users", "nightshift-notifications"},
            timeout=15,
            what=f"spans from the CLI and both workers, got {spans}",
        )

    emails = list(outbox.glob("*.eml"))
    assert len(emails) == 1
    assert EMAIL in emails[0].read_text()
    with Session(clean_db) as session:
        assert session.scalar(select(func.count()).select_from(EmailDelivery)) == 1

    assert scanned, "the scan saw no keys at all"
    for value in scanned:
        for secret in (EMAIL, NAME, "Grace", "Hopper"):
            assert secret.encode() not in value, f"{secret!r} found in Redis"

    by_id = {s.span_id: s for s in spans}
    [mail_span] = [s for s in spans if s.name == "process send_email"]
    users_span = by_id[mail_span.parent_span_id]
    publish_span = by_id[users_span.parent_span_id]
    assert (users_span.service, users_span.name) == ("nightshift-users", "process send_welcome_email")
    assert (publish_span.service, publish_span.name) == ("nightshift-cli", "publish user.registered")
    assert publish_span.trace_id == users_span.trace_id == mail_span.trace_id
