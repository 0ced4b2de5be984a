"""Log lines carry the message and trace ids, as text or JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from dramatiq.middleware import CurrentMessage
from opentelemetry.sdk.trace import TracerProvider

from nightshift.common.contracts.users import SEND_WELCOME_EMAIL
from nightshift.common.logs import configure_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    logging.getLogger().handlers.clear()


def test_json_lines_carry_message_actor_and_trace_ids(captured: io.StringIO) -> None:
    configure_logging(log_format="json", service="users")
    logging.getLogger().handlers[0].setStream(captured)  # type: ignore[attr-defined]
    message = SEND_WELCOME_EMAIL.message({"user_id": 1})
    tracer = TracerProvider().get_tracer("test")

    CurrentMessage._MESSAGE.set(message)  # as the middleware does while a message is processed
    try:
        with tracer.start_as_current_span("work") as span:
            logging.getLogger("nightshift.test").info("did it")
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        CurrentMessage._MESSAGE.set(None)

    line = json.loads(captured.getvalue().splitlines()[-1])
    assert line["message"] == "did it"
    assert line["message_id"] == message.message_id
    assert line["actor"] == "send_welcome_email"
    assert line["trace_id"] == trace_id
    assert line["service"] == "users"


def test_text_lines_outside_a_message_say_so(captured: io.StringIO) -> None:
    configure_logging(log_format="text")
    logging.getLogger().handlers[0].setStream(captured)  # type: ignore[attr-defined]

    logging.getLogger("nightshift.test").warning("idle")

    assert "[msg=- trace=-] idle" in captured.getvalue()
