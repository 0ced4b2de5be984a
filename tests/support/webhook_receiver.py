"""A local HTTP receiver of the ops alert webhook that checks every signature, for the tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nightshift.ops.alert_delivery import verify
from tests.support.http_server import QuietHandler, serving


@dataclass
class Received:
    """What the receiver got: the valid deliveries' bodies, and how many were refused."""

    secret: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for body in self.deliveries if body["status"] == status]


@contextmanager
def webhook_receiver(secret: str) -> Iterator[tuple[str, Received]]:
    """Serve a receiver on a free port; yield its URL and what it receives (401 on a bad signature)."""
    received = Received(secret)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify(
                received.secret,
                self.headers.get("X-Nightshift-Timestamp", ""),
                body,
                self.headers.get("X-Nightshift-Signature", ""),
            )
            with received.lock:
                if ok:
                    received.deliveries.append(json.loads(body))
                else:
                    received.refused += 1
            self.send_response(204 if ok else 401)
            self.end_headers()

    with serving(Handler) as url:
        yield f"{url}/hooks/nightshift", received
