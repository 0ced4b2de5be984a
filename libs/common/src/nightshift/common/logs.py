"""Logging: text locally, JSON in production, every line with message and trace ids."""

from __future__ import annotations

import logging
import sys

from dramatiq.middleware import CurrentMessage
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [msg=%(message_id)s trace=%(trace_id)s] %(message)s"


class ContextFilter(logging.Filter):
    """Adds ``message_id``, ``actor`` and ``trace_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = CurrentMessage.get_current_message()
        record.message_id = message.message_id if message else "-"
        record.actor = message.actor_name if message else "-"
        span_context = trace.get_current_span().get_span_context()
        record.trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else "-"
        return True


def configure_logging(*, log_format: str = "text", level: str = "INFO", service: str = "nightshift") -> None:
    """Send logs to stderr in *log_format* (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(message_id)s %(actor)s %(trace_id)s",
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
