"""HTTP requests that cannot be turned against the inside (no server-side request forgery).

An endpoint's host is resolved when the request is made, every address it
resolves to must be public (not loopback, private, link-local, such as the
cloud metadata address 169.254.169.254, multicast, reserved or unspecified;
IPv4-mapped IPv6 addresses are checked as IPv4), and the connection is opened to
the address that was checked, so a DNS answer cannot change between the check and
the connection. Redirects are never followed (a 3xx is an answer like any
other). Loopback is allowed only when the caller says so (the local runner's
receiver, tests).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from nightshift.common.errors import PermanentError

#: Answer bytes read at most (receivers answer a status; the body is not kept).
MAX_ANSWER_BYTES = 64 * 1024


class UnsafeUrl(PermanentError):
    """A webhook URL that is malformed or resolves to an address that is not public."""


@dataclass(frozen=True)
class Answer:
    """An endpoint's answer: status and the first bytes of its body."""

    status: int
    body: bytes


def check_url(url: str, *, allow_loopback: bool = False) -> list[str]:
    """The addresses *url*'s host resolves to, all checked.

    Parameters:
      allow_loopback: Accept loopback addresses (and plain ``http``), never in production.

    Raises:
      UnsafeUrl: Not ``https`` (or ``http`` with loopback allowed), no host, does not
        resolve, or resolves to any address that is not public.
    """
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_loopback else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeUrl(f"webhook URL must use {' or '.join(schemes)}")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeUrl("webhook URL needs a host and no credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError) as error:
        raise UnsafeUrl(f"webhook host does not resolve ({type(error).__name__})") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    for address in addresses:
        _check_address(address, allow_loopback=allow_loopback)
    return addresses


def _check_address(address: str, *, allow_loopback: bool) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        if allow_loopback:
            return
        raise UnsafeUrl(f"webhook host resolves to a loopback address ({ip})")
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local:
        raise UnsafeUrl(f"webhook host resolves to a non-public address ({ip})")


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float, allow_loopback: bool = False
) -> Answer:
    """POST *body* to *url*, connecting only to a checked address and following no redirect.

    Raises:
      UnsafeUrl: The URL or what it resolves to now is refused.
      OSError, http.client.HTTPException: The connection failed or timed out.
    """
    addresses = check_url(url, allow_loopback=allow_loopback)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(host, port, addresses[0], timeout=timeout_s)
    else:
        connection = _PinnedHTTPConnection(host, port, addresses[0], timeout=timeout_s)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        connection.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        return Answer(response.status, response.read(MAX_ANSWER_BYTES))
    finally:
        connection.close()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to *address*, with *host* in the ``Host`` header."""

    def __init__(self, host: str, port: int, address: str, *, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to *address*, the certificate checked against *host* (SNI too)."""

    def __init__(self, host: str, port: int, address: str, *, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]
