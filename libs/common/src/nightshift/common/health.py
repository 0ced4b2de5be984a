"""The health server every service container runs: ``/livez``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text

Check = Callable[[], tuple[bool, dict[str, Any]]]


def readiness_check(client: redis.Redis[bytes], engine: Engine) -> Check:
    """Ready when Redis answers PING and PostgreSQL answers ``SELECT 1``, each within a second or two.

    Parameters:
      client: The Redis client to ping, with short timeouts (``redis_ha.redis_client(settings,
        socket_timeout=1, socket_connect_timeout=1)``: through Sentinel and TLS as configured).
    """

    def check() -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {}
        try:
            client.ping()
            detail["redis"] = "ok"
        except Exception as error:
            detail["redis"] = f"{type(error).__name__}: {error}"
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            detail["database"] = "ok"
        except Exception as error:
            detail["database"] = type(error).__name__
        return all(value == "ok" for value in detail.values()), detail

    return check


class HealthServer:
    """A small threaded HTTP server for probes and Prometheus.

    Parameters:
      liveness: True while the process is making progress.
      readiness: True while its dependencies answer.
      registries: Whose metrics ``/metrics`` serves (the process default registry is always added).
      status: Optional extra JSON served at ``/status``.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        liveness: Check,
        readiness: Check,
        registries: tuple[CollectorRegistry, ...] = (),
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/livez": lambda: _probe(liveness),
            "/readyz": lambda: _probe(readiness),
            "/metrics": lambda: (
                200,
                CONTENT_TYPE_LATEST,
                b"".join(generate_latest(r) for r in (REGISTRY, *registries)),
            ),
        }
        if status is not None:
            routes["/status"] = lambda: (200, "application/json", json.dumps(status(), default=str).encode())

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                code, content_type, body = route() if route else (404, "text/plain", b"not found\n")
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # probes every few seconds would drown the logs

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="nightshift-health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _probe(check: Check) -> tuple[int, str, bytes]:
    try:
        ok, detail = check()
    except Exception as error:
        ok, detail = False, {"error": f"{type(error).__name__}: {error}"}
    body = json.dumps({"ok": ok, **detail}).encode()
    return (200 if ok else 503), "application/json", body
