"""user.registered reaches the users actor, which records one welcome request in the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from nightshift.common.contracts.users import SEND_WELCOME_EMAIL
from nightshift.common.db.models import JobRecord, OutboxEvent, User
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker

pytestmark = pytest.mark.integration


def _make_user(engine: Engine) -> int:
    with Session(engine) as session, session.begin():
        user = User(email="ada@example.org", display_name="Ada", locale="fr")
        session.add(user)
        session.flush()
        return user.id


def test_user_registered_records_one_welcome_request(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    import nightshift.users.actors  # noqa: F401 - declares the actors on the broker

    user_id = _make_user(clean_db)
    run_worker({SEND_WELCOME_EMAIL.queue_name})
    first = publish("user.registered", {"user_id": user_id})
    second = publish("user.registered", {"user_id": user_id})

    def both_done() -> bool:
        broker.record_writer.flush()
        with Session(clean_db) as session:
            statuses = session.scalars(
                select(JobRecord.status).where(JobRecord.message_id.in_([first[0].message_id, second[0].message_id]))
            ).all()
        return sorted(statuses) == ["done", "done"]

    wait_for(both_done, what="both messages done")
    with Session(clean_db) as session:
        events = session.scalars(select(OutboxEvent)).all()
        audit = session.execute(text("SELECT count(*) FROM task_audit")).scalar()
    assert [(e.event_name, e.payload["template"], e.payload["user_id"]) for e in events] == [
        ("notification.requested", "welcome", user_id)
    ]
    assert audit == 2
