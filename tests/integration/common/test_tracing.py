"""One trace links the publish, the users actor and the notifications actor (in-memory exporter)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.contracts.notifications import SEND_EMAIL
from nightshift.common.contracts.users import SEND_WELCOME_EMAIL
from nightshift.common.db.models import User
from nightshift.common.events import publish
from nightshift.common.outbox import OutboxRelay
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.tracing import configure_tracing

pytestmark = pytest.mark.integration

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, installed once (OpenTelemetry allows only one), exporting to memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        configure_tracing("tests", otlp_endpoint=None, extra_processor=SimpleSpanProcessor(_EXPORTER))
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_publish_users_and_notifications_share_one_trace(
    spans: InMemorySpanExporter, broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    import nightshift.notifications.actors
    import nightshift.users.actors  # noqa: F401 - declares the actors

    with Session(clean_db) as session, session.begin():
        user = User(email="barbara@example.org", display_name="Barbara", locale="en")
        session.add(user)
        session.flush()
        user_id = user.id
    run_worker({SEND_WELCOME_EMAIL.queue_name, SEND_EMAIL.queue_name})
    relay = OutboxRelay(runtime.engine(), broker)
    relay.start()
    try:
        publish("user.registered", {"user_id": user_id})
        wait_for(lambda: list(Path(runtime.settings().outbox_dir).glob("*.eml")), what="the email")
        wait_for(lambda: any(s.name == "process send_email" for s in spans.get_finished_spans()), what="mail span")
    finally:
        relay.stop()

    finished = {span.name: span for span in spans.get_finished_spans()}
    published = finished["publish user.registered"]
    users = finished["process send_welcome_email"]
    mail = finished["process send_email"]
    assert published.context is not None and users.context is not None and mail.context is not None
    assert {published.context.trace_id, users.context.trace_id, mail.context.trace_id} == {published.context.trace_id}
    assert users.parent is not None and users.parent.span_id == published.context.span_id
    assert mail.parent is not None and mail.parent.span_id == users.context.span_id
    assert users.kind == trace.SpanKind.CONSUMER
    assert mail.attributes is not None and mail.attributes["messaging.destination.name"] == "notifications_high"
