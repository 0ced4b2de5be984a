"""``nightshift up``: the whole platform on one machine, supervised, stopped cleanly on Ctrl-C.

Without ``REDIS_URL`` / ``DATABASE_URL`` it starts embedded servers whose data
stays under ``var/``; it writes their addresses to ``var/run/local.env`` so
other ``nightshift`` commands find them, migrates, starts every installed
service as a child process (logs in ``var/log/``), restarts a child that dies,
and runs demo traffic.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from nightshift.common.db import migrate
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.local.embedded import EmbeddedPostgres, EmbeddedRedis, runtime_dir_default
from nightshift.common.processes import stop_processes
from nightshift.common.service import ServiceSpec, installed_services, load_object
from nightshift.common.settings import LOCAL_ENV_FILE

#: Seconds between two rounds of demo traffic (each service spec's ``demo`` hook).
DEMO_INTERVAL_S = 4.0
#: Seconds a child is given to stop on Ctrl-C before it is killed.
STOP_GRACE_S = 15.0


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Child:
    """A supervised service process."""

    spec: ServiceSpec
    port: int
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nightshift.common.cli",
                "run",
                self.spec.name,
                "--health-port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def run_local(var_dir: Path = Path("var")) -> int:
    """Run everything until Ctrl-C or SIGTERM; return the exit code."""
    var_dir = var_dir.resolve()
    for sub in ("run", "log", "storage", "outbox"):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    redis_server: EmbeddedRedis | None = None
    postgres: EmbeddedPostgres | None = None
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    if not redis_url:
        redis_server = EmbeddedRedis(var_dir / "redis").start()
        redis_url = redis_server.url
        print(f"redis       embedded, {redis_url}")
    if not database_url:
        runtime_dir_default()
        postgres = EmbeddedPostgres(var_dir / "pg", keep=True).start()
        database_url = postgres.create_database("nightshift")
        print(f"postgresql  embedded, data in {var_dir / 'pg'}")
    env_values = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "STORAGE_URL": os.environ.get("STORAGE_URL", f"file://{var_dir / 'storage'}"),
        "OUTBOX_DIR": os.environ.get("OUTBOX_DIR", str(var_dir / "outbox")),
    }
    env_file = Path(LOCAL_ENV_FILE)
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env_values.items()))
    migrate.upgrade(database_url)
    print("migrations  applied")

    children = _start_children(var_dir, {**os.environ, **env_values})
    _print_banner(children, var_dir)
    factory = make_session_factory(make_engine(database_url, pool_size=1))
    demos = [load_object(spec.demo) for spec in installed_services().values() if spec.demo]
    next_demo = time.monotonic() + 2.0
    try:
        while not stop.is_set():
            _restart_dead(children)
            if time.monotonic() >= next_demo:
                _demo_tick(factory, demos)
                next_demo = time.monotonic() + DEMO_INTERVAL_S
            stop.wait(0.5)
    finally:
        print("\nstopping…")
        _stop_children(children)
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            postgres.stop()
        env_file.unlink(missing_ok=True)
        print("stopped.")
    return 0


def _start_children(var_dir: Path, env: dict[str, str]) -> list[Child]:
    children = []
    for spec in installed_services().values():
        if not spec.queues and not spec.entrypoint:
            continue
        port = spec.health_port
        while not port_is_free(port):
            port += 100
        child = Child(spec, port, var_dir / "log" / f"{spec.name}.log", env)
        child.start()
        children.append(child)
    return children


def _restart_dead(children: list[Child]) -> None:
    for child in children:
        if not child.alive() and time.monotonic() - child.started_at > min(2.0**child.restarts, 30.0):
            code = child.process.returncode if child.process else None
            print(f"{child.spec.name} exited ({code}); restarting — see {child.log_path}")
            child.restarts += 1
            child.start()


def _stop_children(children: list[Child]) -> None:
    stop_processes((c.process for c in children if c.process is not None), grace_s=STOP_GRACE_S)


def _demo_tick(factory: object, demos: list[object]) -> None:
    try:
        for demo in demos:
            demo(factory)  # type: ignore[operator]
    except Exception as error:
        print(f"demo        skipped: {type(error).__name__}: {error}")


def _print_banner(children: list[Child], var_dir: Path) -> None:
    lines = ["", "Nightshift is running. Where to look:"]
    for child in children:
        base = f"http://127.0.0.1:{child.port}"
        extra = f"  {base}/status" if not child.spec.queues else ""  # served by the scheduler, not workers
        lines.append(f"  {child.spec.name:<14} {base}/livez  {base}/readyz  {base}/metrics{extra}")
    lines += [
        f"  outbox (mail)  {var_dir / 'outbox'}",
        f"  storage        {var_dir / 'storage'}",
        f"  logs           {var_dir / 'log'}",
        "  dashboard      not built yet (ops service); meanwhile: nightshift status",
        "",
        "Try, in another terminal:",
        "  .venv/bin/nightshift status",
        "  .venv/bin/nightshift publish user.registered '{\"user_id\": 1}'",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)
