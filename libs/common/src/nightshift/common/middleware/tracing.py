"""W3C trace context carried in message options; a consumer span per message."""

from __future__ import annotations

import threading
from contextvars import Token
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, Span, SpanKind, Status, StatusCode

#: The message option holding the W3C ``traceparent``/``tracestate`` carrier.
TRACE_OPTION = "trace_context"


def tracing_installed() -> bool:
    """Whether a tracer provider (the SDK's) is installed, rather than the API's no-op default."""
    return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider | NoOpTracerProvider)


class Tracing(Middleware):
    """Inject the current trace context on enqueue; open a consumer span around processing.

    A message that already carries a context (a retry, an outbox relay that
    stored the publisher's) keeps it, so one trace links a publish to every
    actor downstream.
    """

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("nightshift.worker")
        self._local = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        if TRACE_OPTION in message.options:
            return
        if not context.get_current() and not tracing_installed():
            return  # nothing to carry: no span, no baggage, no SDK to start one
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            message.options[TRACE_OPTION] = carrier

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        carrier = message.options.get(TRACE_OPTION)
        if not tracing_installed():
            # The API's no-op tracer would start a span that records nothing and only
            # carries the parent's context: make that context current directly, so
            # what this message enqueues still carries the trace on.
            self._stack().append((None, context.attach(propagate.extract(carrier)) if carrier else None))
            return
        parent = propagate.extract(carrier or {})
        span = self.tracer.start_span(
            f"process {message.actor_name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "nightshift.actor": message.actor_name,
                "nightshift.attempt": int(message.options.get("retries", 0)) + 1,
            },
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        self._stack().append((span, token))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._end(exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._end(None)

    def _end(self, exception: BaseException | None) -> None:
        stack = self._stack()
        if not stack:
            return
        span, token = stack.pop()
        if span is None:
            if token is not None:
                context.detach(token)
            return
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        if token is not None:
            context.detach(token)

    def _stack(self) -> list[tuple[Span | None, Token[Context] | None]]:
        stack: list[tuple[Span | None, Token[Context] | None]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack
