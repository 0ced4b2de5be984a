"""Entry point of the ops service: the web process (dashboard, JSON API, ``/metrics``, probes,
and the alert evaluator).

``nightshift run ops`` calls :func:`main`: uvicorn serves the FastAPI application
until SIGTERM, on the spec's port (``OPS_PORT`` overrides it), and an
:class:`~nightshift.ops.evaluator.AlertEvaluator` thread evaluates the alert rules
while this process holds the evaluator's lease (one replica active, the others
standing by). The ops actors (delivery, maintenance) run in the other process of
the service, ``nightshift worker ops`` (the spec's ``separate_worker``).
"""

from __future__ import annotations

import logging

import uvicorn

from nightshift.common import runtime
from nightshift.common.logs import configure_logging
from nightshift.common.processes import stop_on_signals
from nightshift.common.service import ServiceSpec
from nightshift.common.tracing import configure_tracing
from nightshift.ops.app import create_app, default_context
from nightshift.ops.evaluator import AlertEvaluator
from nightshift.ops.settings import OpsSettings

logger = logging.getLogger(__name__)


def main(spec: ServiceSpec) -> int:
    """Serve the ops web process until SIGTERM; return the exit code."""
    settings = runtime.settings()
    options = runtime.service_settings(OpsSettings)
    configure_logging(log_format=settings.log_format, level=settings.log_level, service=spec.name)
    configure_tracing(spec.name, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    port = spec.health_port if options.port is None else options.port
    logger.info("Ops dashboard on http://%s:%d/", options.host, port)
    # uvicorn handles SIGTERM and SIGINT itself (stops accepting, finishes the requests), then
    # re-raises the signal to the handlers it found: ours, so the process exits 0 instead of dying of it.
    stop_on_signals()
    ctx = default_context()
    evaluator = AlertEvaluator(ctx).start()
    config = uvicorn.Config(create_app(ctx), host=options.host, port=port, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run()
    finally:
        evaluator.stop()
    return 0
