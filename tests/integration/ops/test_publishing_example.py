"""docs/examples/fastapi_publisher.py runs: the outbox row and the enqueued message, with job ids."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common.db.models import OutboxEvent
from nightshift.common.redis_broker import NightshiftRedisBroker

pytestmark = pytest.mark.integration


def test_the_fastapi_example_publishes_in_a_transaction_and_directly(
    broker: NightshiftRedisBroker, clean_db: Engine
) -> None:
    example: Any = importlib.import_module("docs.examples.fastapi_publisher")
    example.broker.cache_clear()
    client = TestClient(example.app)

    created = client.post("/users", params={"email": "ada@example.com", "display_name": "Ada"})
    reindexed = client.post("/posts/5/reindex")
    refused = client.post("/posts/0/reindex")

    assert created.status_code == 201
    with Session(clean_db) as session:
        event = session.scalars(select(OutboxEvent)).one()
    assert (event.event_name, event.payload) == ("user.registered", {"user_id": created.json()["user_id"]})
    (job_id,) = reindexed.json()["job_ids"]
    (body,) = broker.client.hvals(broker.keys.messages("posts_high"))
    assert job_id.encode() in body
    assert refused.status_code == 422 and "post_id" in refused.json()["detail"]
    example.broker().close()
