"""A local HTTP server answering like SendGrid's Mail Send API and recording each request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.http_server import QuietHandler, serving


@dataclass(frozen=True)
class RecordedRequest:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class SendGridStub:
    """What the server answers and what it received."""

    url: str
    status: int = 202
    response_body: bytes = b""
    #: Seconds each answer takes, to make concurrent sends overlap.
    latency_s: float = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    #: Statuses answered to the next requests, one each, before falling back to ``status``.
    next_statuses: list[int] = field(default_factory=list)


@contextmanager
def sendgrid_stub_server() -> Iterator[SendGridStub]:
    """Serve on a free local port (``stub.url``) until the block ends."""
    stub = SendGridStub(url="")

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            stub.requests.append(RecordedRequest(time.monotonic(), "POST", self.path, dict(self.headers.items()), body))
            time.sleep(stub.latency_s)
            status = stub.next_statuses.pop(0) if stub.next_statuses else stub.status
            self.send_response(status)
            if status == 202:
                self.send_header("X-Message-Id", f"sg-{len(stub.requests)}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(stub.response_body)))
            self.end_headers()
            self.wfile.write(stub.response_body)

    with serving(Handler) as url:
        stub.url = url
        yield stub
