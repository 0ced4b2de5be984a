"""notification.requested through a real worker into the outbox folder, once per idempotency key."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common.contracts.notifications import SEND_EMAIL
from nightshift.common.db.models import JobRecord
from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.notifications.mailers.outbox import outbox_file_name
from nightshift.notifications.models import EmailDelivery

pytestmark = pytest.mark.integration


def _statuses(broker: NightshiftRedisBroker, engine: Engine, message_ids: list[str]) -> list[str]:
    broker.record_writer.flush()
    with Session(engine) as session:
        return sorted(session.scalars(select(JobRecord.status).where(JobRecord.message_id.in_(message_ids))).all())


def test_same_key_twice_writes_one_eml_and_one_delivery_row(
    broker: NightshiftRedisBroker,
    run_worker: Any,
    clean_db: Engine,
    env: CommonSettings,
    configure_mail: Callable[..., None],
    make_user: Callable[..., int],
) -> None:
    import nightshift.notifications.actors  # noqa: F401 - declares the actors on the broker

    user_id = make_user(display_name="Zoé <script>", locale="fr")
    run_worker({SEND_EMAIL.queue_name})
    event = {"user_id": user_id, "template": "welcome", "idempotency_key": f"welcome:{user_id}"}
    first = publish("notification.requested", event)
    second = publish("notification.requested", event)
    ids = [first[0].message_id, second[0].message_id]

    wait_for(lambda: _statuses(broker, clean_db, ids) == ["done", "done"], what="both messages done")

    outbox = Path(env.outbox_dir)
    assert [p.name for p in outbox.iterdir()] == [outbox_file_name(f"welcome:{user_id}")]
    message = message_from_bytes(next(outbox.iterdir()).read_bytes(), policy=policy.default)
    assert message["To"] == '"Zoé <script>" <ada@example.org>'
    assert message["From"] == "Nightshift <hello@nightshift.test>"
    assert message["Subject"] == "Bienvenue sur Nightshift, Zoé <script> !"
    html = message.get_body(("html",))
    assert html is not None
    assert "Bonjour Zoé &lt;script&gt;," in html.get_content()

    with Session(clean_db) as session:
        rows = session.scalars(select(EmailDelivery)).all()
    assert [(r.idempotency_key, r.user_id, r.template, r.locale, r.backend) for r in rows] == [
        (f"welcome:{user_id}", user_id, "welcome", "fr", "outbox")
    ]
    assert rows[0].provider_message_id == outbox_file_name(f"welcome:{user_id}")
    assert rows[0].message_id in ids


def test_missing_user_is_dead_lettered_at_once(
    broker: NightshiftRedisBroker,
    run_worker: Any,
    clean_db: Engine,
    env: CommonSettings,
    configure_mail: Callable[..., None],
) -> None:
    import nightshift.notifications.actors  # noqa: F401

    run_worker({SEND_EMAIL.queue_name})
    sent = publish("notification.requested", {"user_id": 999, "template": "welcome", "idempotency_key": "welcome:999"})

    wait_for(lambda: _statuses(broker, clean_db, [sent[0].message_id]) == ["dead"], what="the message dead")

    letters = list_dead_letters(broker, SEND_EMAIL.queue_name)
    assert [(d.error_type, d.reason) for d in letters] == [("NotFound", "user 999 does not exist")]
    with Session(clean_db) as session:
        record = session.get(JobRecord, sent[0].message_id)
        assert record is not None
        assert record.attempts == 1
    assert not Path(env.outbox_dir).exists()
