"""A web API publishing Nightshift events with only ``nightshift-common`` installed.

Two ways, both validated against the event catalog before anything is sent:

* ``publish_in_transaction`` writes the event into the same database transaction
  as the API's own change (here, a new user): it is relayed once the transaction
  commits (by the outbox relay every worker runs), never for a rolled-back change;
* ``publish`` enqueues at once and returns the messages, whose ids are the job
  ids the dashboard, ``nightshift job <id>`` and the dead letters show.

Run it (with the platform running, e.g. ``make up`` in another terminal, whose
``var/run/local.env`` gives the addresses)::

    pip install nightshift-common fastapi uvicorn   # in this repository: make setup
    uvicorn docs.examples.fastapi_publisher:app --port 8000
    curl -X POST 'localhost:8000/users?email=ada@example.com&display_name=Ada'
    curl -X POST localhost:8000/posts/1/reindex
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI, HTTPException

from nightshift.common import runtime
from nightshift.common.broker import build_broker
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import User
from nightshift.common.errors import EventError
from nightshift.common.events import publish
from nightshift.common.outbox import publish_in_transaction
from nightshift.common.redis_broker import NightshiftRedisBroker

app = FastAPI(title="A publisher of Nightshift events")


@cache
def broker() -> NightshiftRedisBroker:
    """One broker per process (it writes the "queued" job records too)."""
    return build_broker(runtime.settings(), set_global=False)


@app.post("/users", status_code=201)
def register(email: str, display_name: str) -> dict[str, Any]:
    """Create a user and publish ``user.registered`` in the same transaction (the outbox)."""
    with transaction(runtime.session_factory()) as session:
        user = User(email=email, display_name=display_name)
        session.add(user)
        session.flush()  # the id, for the event
        publish_in_transaction(session, "user.registered", {"user_id": user.id}, aggregate_id=f"user:{user.id}")
    return {"user_id": user.id}


@app.post("/posts/{post_id}/reindex", status_code=202)
def reindex(post_id: int) -> dict[str, Any]:
    """Publish ``post.updated`` now; answer the job ids to follow it with."""
    try:
        messages = publish("post.updated", {"post_id": post_id}, broker=broker())
    except EventError as error:  # unknown event or invalid payload: nothing was enqueued
        raise HTTPException(422, str(error)) from None
    return {"job_ids": [message.message_id for message in messages]}
