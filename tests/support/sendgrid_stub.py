"""A local HTTP server answering like SendGrid's Mail Send API and recording each request."""

from __future__ import annotations

import json
import threading
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
    #: Statuses answered to the next requests, one each, before falling back to ``status``;
    #: 0 closes the connection without an answer (the request counts as lost: see ``dropped``).
    next_statuses: list[int] = field(default_factory=list)
    #: Requests (1-based, in arrival order) recorded on arrival, then held unanswered until :meth:`release`.
    hold: set[int] = field(default_factory=set)
    #: Requests answered so far, and those dropped without an answer (not delivered by the provider).
    answered: int = 0
    dropped: list[RecordedRequest] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Answer the held requests (their client may be gone)."""
        self.released.set()

    def received(self) -> dict[str, int]:
        """How many times each address was in a request the provider accepted (not dropped)."""
        counts: dict[str, int] = {}
        for request in self.requests:
            for personalization in request.body["personalizations"]:
                address = personalization["to"][0]["email"]
                counts[address] = counts.get(address, 0) + 1
        return counts


@contextmanager
def sendgrid_stub_server() -> Iterator[SendGridStub]:
    """Serve on a free local port (``stub.url``) until the block ends."""
    stub = SendGridStub(url="")

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            recorded = RecordedRequest(time.monotonic(), "POST", self.path, dict(self.headers.items()), body)
            status = stub.next_statuses.pop(0) if stub.next_statuses else stub.status
            if status == 0:
                stub.dropped.append(recorded)
                self.close_connection = True
                return
            stub.requests.append(recorded)
            if len(stub.requests) in stub.hold:  # one request at a time in these tests
                stub.released.wait(timeout=60)
            time.sleep(stub.latency_s)
            try:
                self.send_response(status)
                if status == 202:
                    self.send_header("X-Message-Id", f"sg-{len(stub.requests)}")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(stub.response_body)))
                self.end_headers()
                self.wfile.write(stub.response_body)
                stub.answered += 1
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client was killed while its request was held

    with serving(Handler) as url:
        stub.url = url
        try:
            yield stub
        finally:
            stub.release()  # a request still held (a failed test) answers, so the server can stop
