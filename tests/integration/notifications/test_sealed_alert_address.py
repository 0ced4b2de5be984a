"""An operator's address travels sealed in ``ops.alert_raised``: only the actor opens it; in clear it is refused."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.contracts.notifications import SEND_OPS_ALERT, OpsAlert
from nightshift.common.db.models import JobRecord
from nightshift.common.errors import InvalidEvent
from nightshift.common.events import publish
from nightshift.common.events.catalog import CATALOG
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.sealing import personal_fields
from nightshift.common.settings import CommonSettings

pytestmark = pytest.mark.integration

ON_CALL = "on-call.person@example.org"


def _alert(**extra: Any) -> dict[str, Any]:
    return {
        "alert_key": "disk:full:1",
        "source": "ops",
        "kind": "disk_full",
        "summary": "The media volume is 95 % full",
        **extra,
    }


def test_a_sealed_address_travels_as_ciphertext_and_is_opened_by_the_actor(
    broker: NightshiftRedisBroker,
    run_worker: Any,
    clean_db: Engine,
    env: CommonSettings,
    configure_mail: Callable[..., None],
) -> None:
    assert CATALOG["ops.alert_raised"].personal_fields == ("notify",)
    assert personal_fields(OpsAlert) == ("notify",)
    sealed = runtime.sealer().seal(ON_CALL)

    import nightshift.ops.actors  # noqa: F401 - declares the ops actors (record_raised_alert)

    # Published (by any service, or through the ops API): the queue holds the ciphertext only.
    [raised] = publish("ops.alert_raised", _alert(notify=sealed))
    bodies = broker.client.hvals(broker.keys.messages(raised.queue_name))
    assert bodies and all(ON_CALL.encode() not in body for body in bodies)
    assert all(sealed.encode() in body for body in bodies)

    # ops records it and passes the address on still sealed; notifications' actor opens it.
    run_worker({raised.queue_name, SEND_OPS_ALERT.queue_name})
    outbox = Path(env.outbox_dir)

    def recipients() -> list[str] | None:
        emails = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in outbox.glob("*.eml")]
        return sorted(str(email["To"]) for email in emails) if len(emails) == 2 else None

    to = wait_for(recipients, what="the operators' email and the named address's copy")
    assert any(ON_CALL in address for address in to)
    assert any("operators@" in address for address in to)

    broker.record_writer.flush()
    with Session(clean_db) as session:
        records = session.scalars(select(JobRecord)).all()
    assert len(records) >= 3
    assert all(ON_CALL not in str(record.args) for record in records)


def test_publish_refuses_the_address_in_clear_naming_the_field_and_enqueues_nothing(
    broker: NightshiftRedisBroker, env: CommonSettings
) -> None:
    queue = CATALOG["ops.alert_raised"].subscribers[0].contract.queue_name
    with pytest.raises(InvalidEvent) as refused:
        publish("ops.alert_raised", _alert(notify=ON_CALL))
    assert "notify" in str(refused.value)
    assert "sealed" in str(refused.value)
    assert ON_CALL not in str(refused.value)
    assert broker.client.hlen(broker.keys.messages(queue)) == 0
