"""A small HTTP receiver run by ``nightshift up``: where demo webhooks and pushes land locally.

It accepts any ``POST``, answers ``201 Created`` (what a Web Push service answers, RFC 8030;
clients such as pywebpush refuse anything above 202) and prints one line per request (path,
size and the headers that identify a delivery), so an operator watching the
terminal sees outgoing webhooks and Web Push messages arrive. Its address is
given to the services and the demo hooks as ``LOCAL_RECEIVER_URL``; the library
does not know who posts to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The variable holding the receiver's base URL (``http://127.0.0.1:<port>``).
RECEIVER_URL_VARIABLE = "LOCAL_RECEIVER_URL"
#: Request headers worth printing: they identify a delivery without its content.
_SHOWN_HEADERS = ("webhook-id", "webhook-signature", "content-encoding", "ttl")


class LocalReceiver:
    """A threaded HTTP server that accepts and reports every ``POST``.

    Parameters:
      report: Called with one line per request (``print`` by default).
      host, port: Where to listen (port 0: any free port).
    """

    def __init__(self, *, report: Callable[[str], None] = print, host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                shown = " ".join(
                    f"{name}={self.headers[name][:24]}" for name in _SHOWN_HEADERS if self.headers.get(name)
                )
                report(f"receiver    POST {self.path} {len(body)} bytes {shown}".rstrip())
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="nightshift-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
