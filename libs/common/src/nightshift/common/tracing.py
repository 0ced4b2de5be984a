"""OpenTelemetry set-up: a tracer provider per process, OTLP export when configured."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_tracing(
    service_name: str, *, otlp_endpoint: str | None, extra_processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Install a tracer provider for *service_name*.

    Spans are exported over OTLP/HTTP to *otlp_endpoint* (e.g. Jaeger's
    ``http://jaeger:4318``). Without an endpoint nor *extra_processor*, nothing
    is installed and the API's no-op tracer keeps the hot path free.

    Returns:
      The installed provider, or None.
    """
    if not otlp_endpoint and extra_processor is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"nightshift-{service_name}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    return provider
