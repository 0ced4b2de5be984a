"""A TCP proxy on 127.0.0.1 that a test can cut: the network faults of the chaos suite.

Clients connect to :attr:`TcpProxy.port`; each connection is relayed to the
target (a TCP address or a Unix socket, PostgreSQL's here). :meth:`blackhole`
stalls every connection, open and new, without closing any (packets lost on
a partitioned network: the peers see silence, not a reset; what was in flight is
delivered once it heals, as TCP retransmission would); :meth:`sever`
resets every connection and refuses new ones (a peer that is gone); :meth:`heal`
lets traffic flow again.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from dataclasses import dataclass, field

#: How long a relay thread waits for data before looking at the proxy's state again.
POLL_S = 0.05


@dataclass
class TcpProxy:
    """Relay 127.0.0.1:*port* to *target*.

    Parameters:
      target: ``(host, port)``, or the path of a Unix socket.
      port: Where it listens (a free port by default).
      latency_s: A delay added to every chunk relayed (a slow Redis).
    """

    target: tuple[str, int] | str
    port: int = 0
    #: Added to every chunk relayed: a slow network or a slow server.
    latency_s: float = 0.0
    _listener: socket.socket | None = None
    _flowing: threading.Event = field(default_factory=threading.Event)
    _refusing: bool = False
    _closed: bool = False
    _connections: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._flowing.set()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()
        return self

    def blackhole(self) -> None:
        """Stall every connection: bytes are no longer relayed, nothing is closed."""
        self._flowing.clear()

    def sever(self) -> None:
        """Reset every connection and refuse new ones until :meth:`heal`."""
        self._refusing = True
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                connection.close()

    def heal(self) -> None:
        self._refusing = False
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.sever()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = self._connect()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="proxy-pump", daemon=True).start()

    def _connect(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
        else:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        return upstream

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._closed:
                if not self._flowing.is_set():
                    self._flowing.wait(POLL_S)  # black hole: leave the bytes unread
                    if source.fileno() < 0:
                        return
                    continue
                readable, _, _ = select.select([source], [], [], POLL_S)
                if not readable:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                while not self._flowing.wait(POLL_S) and not self._closed:
                    pass  # held, as TCP retransmits across a partition, and delivered once it heals
                if self.latency_s:
                    time.sleep(self.latency_s)
                sink.sendall(data)
        except (OSError, ValueError):
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.close()


def postgres_target(database_url: str) -> tuple[str, int] | str:
    """Where *database_url*'s server listens: ``(host, port)``, or its Unix socket's path."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    socket_dir = url.query.get("host")
    port = url.port or 5432
    if isinstance(socket_dir, str) and socket_dir.startswith("/"):
        return f"{socket_dir}/.s.PGSQL.{port}"
    return (url.host or "127.0.0.1", port)


def through_proxy(database_url: str, proxy: TcpProxy) -> str:
    """*database_url* reaching its server through *proxy* (TCP on 127.0.0.1)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    url = url.set(host="127.0.0.1", port=proxy.port, query={k: v for k, v in url.query.items() if k != "host"})
    return url.render_as_string(hide_password=False)
