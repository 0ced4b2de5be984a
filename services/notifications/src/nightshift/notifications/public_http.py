"""The notifications service's public listener: one-click unsubscribe and provider webhooks.

Served by a small threaded HTTP server inside the notifications worker
(``NOTIFICATIONS_PUBLIC_PORT``, default 8112; behind the ingress in production),
no login: every request proves itself (a signed unsubscribe token, a signed
provider request).

====================================  ==============================================
``GET /unsubscribe?token=…``          a page with one button (mail scanners follow
                                      links, so a GET changes nothing)
``POST /unsubscribe?token=…``         unsubscribes at once: RFC 8058's one-click POST
                                      (``List-Unsubscribe=One-Click``) or the button
``POST /providers/sendgrid/events``   SendGrid's signed event webhook (suppressions,
                                      bulk recipients confirmed sent)
====================================  ==============================================
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.orm import Session, sessionmaker

from nightshift.notifications.bulk_reconcile import confirm_from_events
from nightshift.notifications.feedback import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    SendGridEvents,
    apply_events,
)
from nightshift.notifications.preferences import (
    InvalidPreference,
    InvalidUnsubscribeLink,
    UnsubscribeLinks,
    unsubscribe,
)

logger = logging.getLogger(__name__)

#: Largest request body accepted (SendGrid posts batches of events, well under this).
MAX_BODY_BYTES = 5 * 1024 * 1024

_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;">{body}</body></html>"""


class PublicServer:
    """The listener; started beside the worker, stopped after it.

    Parameters:
      sessions: Sessions on the platform's database.
      links: Reads unsubscribe tokens.
      sendgrid_events: Verifies SendGrid's event webhook (None: answered 503, not configured).
      host, port: Where to listen (port 0: any free port).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        links: UnsubscribeLinks,
        *,
        sendgrid_events: SendGridEvents | None,
        host: str,
        port: int,
    ) -> None:
        routes: dict[tuple[str, str], Callable[[dict[str, list[str]], bytes, Any], tuple[int, str, str]]] = {
            ("GET", "/unsubscribe"): lambda query, body, headers: _unsubscribe_page(links, query),
            ("POST", "/unsubscribe"): lambda query, body, headers: _unsubscribe(sessions, links, query),
            ("POST", "/providers/sendgrid/events"): lambda query, body, headers: _sendgrid(
                sessions, sendgrid_events, body, headers
            ),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                route = routes.get((method, url.path))
                length = int(self.headers.get("Content-Length", "0") or 0)
                if length > MAX_BODY_BYTES:
                    code, content_type, text = 413, "text/plain", "request too large\n"
                elif route is None:
                    code, content_type, text = 404, "text/plain", "not found\n"
                else:
                    body = self.rfile.read(length) if length else b""
                    try:
                        code, content_type, text = route(parse_qs(url.query), body, self.headers)
                    except Exception:
                        logger.exception("Public request %s %s failed.", method, url.path)
                        code, content_type, text = 500, "text/plain", "internal error\n"
                payload = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # tokens are in the query string: never logged

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="notifications-public", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> PublicServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _page(title: str, body: str) -> str:
    return _PAGE.format(title=html.escape(title), body=body)


def _token(links: UnsubscribeLinks, query: dict[str, list[str]]) -> tuple[int, str] | None:
    try:
        return links.read(query.get("token", [""])[0])
    except InvalidUnsubscribeLink:
        return None


def _unsubscribe_page(links: UnsubscribeLinks, query: dict[str, list[str]]) -> tuple[int, str, str]:
    if _token(links, query) is None:
        return 400, "text/html", _page("Invalid link", "<p>This unsubscribe link is not valid.</p>")
    token = html.escape(query["token"][0], quote=True)
    form = (
        f'<form method="post" action="/unsubscribe?token={token}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<p>Stop receiving these emails?</p><button type=submit>Unsubscribe</button></form>"
    )
    return 200, "text/html", _page("Unsubscribe", form)


def _unsubscribe(
    sessions: sessionmaker[Session], links: UnsubscribeLinks, query: dict[str, list[str]]
) -> tuple[int, str, str]:
    found = _token(links, query)
    if found is None:
        return 400, "text/html", _page("Invalid link", "<p>This unsubscribe link is not valid.</p>")
    user_id, category = found
    try:
        unsubscribe(sessions, user_id, category)
    except InvalidPreference:
        return 400, "text/html", _page("Not possible", "<p>Security notifications cannot be turned off.</p>")
    return 200, "text/html", _page("Unsubscribed", "<p>Done: you will not receive these emails any more.</p>")


def _sendgrid(
    sessions: sessionmaker[Session], events: SendGridEvents | None, body: bytes, headers: Any
) -> tuple[int, str, str]:
    if events is None:
        return 503, "text/plain", "SendGrid event webhook not configured\n"
    try:
        verified = events.verify(body, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER))
    except InvalidSignature as error:
        return 403, "text/plain", f"{error}\n"
    suppressed = apply_events(sessions, verified)
    confirmed = confirm_from_events(sessions, verified)
    return 200, "application/json", f'{{"suppressed": {suppressed}, "confirmed": {confirmed}}}'
