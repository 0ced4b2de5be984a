"""``nightshift up``: the whole platform on one machine, supervised, stopped cleanly on Ctrl-C.

Without ``REDIS_URL`` / ``DATABASE_URL`` it starts embedded servers whose data
stays under ``var/``; it writes their addresses to ``var/run/local.env`` so
other ``nightshift`` commands find them, migrates, starts every installed
service as a child process (logs in ``var/log/``), restarts a child that dies,
and runs demo traffic.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nightshift.common.db import migrate
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.local.embedded import EmbeddedPostgres, EmbeddedRedis, require_local_extra, runtime_dir_default
from nightshift.common.local.receiver import RECEIVER_URL_VARIABLE, LocalReceiver
from nightshift.common.processes import port_is_free, stop_on_signals
from nightshift.common.service import ServiceSpec, installed_services, load_object
from nightshift.common.settings import LOCAL_ENV_FILE
from nightshift.common.supervision import SupervisedChild, restart_dead, stop_children

#: Seconds between two rounds of demo traffic (each service spec's ``demo`` hook).
DEMO_INTERVAL_S = 4.0
#: Seconds a child is given to stop on Ctrl-C before it is killed.
STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class LocalService:
    """A service run by ``nightshift up``: its spec, health port and supervised process."""

    spec: ServiceSpec
    port: int
    child: SupervisedChild


def run_local(var_dir: Path = Path("var")) -> int:
    """Run everything until Ctrl-C or SIGTERM; return the exit code.

    Raises:
      ConfigurationError: An embedded server is needed and the ``local`` extra is not installed.
    """
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    require_local_extra(redis=not redis_url, postgres=not database_url)
    stop = stop_on_signals()
    var_dir = var_dir.resolve()
    for sub in ("run", "log", "storage", "outbox"):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)
    redis_server: EmbeddedRedis | None = None
    postgres: EmbeddedPostgres | None = None
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
    receiver = LocalReceiver().start()
    os.environ[RECEIVER_URL_VARIABLE] = receiver.url  # the demo hooks run in this process
    print(f"receiver    {receiver.url} (demo webhooks and pushes land here)")

    services = _start_services(var_dir, {**os.environ, **env_values, RECEIVER_URL_VARIABLE: receiver.url})
    factory = make_session_factory(make_engine(database_url, pool_size=1))
    _print_banner(services, var_dir, _banner_lines(services, factory))
    demos = [load_object(spec.demo) for spec in installed_services().values() if spec.demo]
    next_demo = time.monotonic() + 2.0
    try:
        while not stop.is_set():
            _restart_dead(services)
            if time.monotonic() >= next_demo:
                _demo_tick(factory, demos)
                next_demo = time.monotonic() + DEMO_INTERVAL_S
            stop.wait(0.5)
    finally:
        print("\nstopping…")
        stop_children([service.child for service in services], grace_s=STOP_GRACE_S)
        receiver.stop()
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            postgres.stop()
        env_file.unlink(missing_ok=True)
        print("stopped.")
    return 0


def _start_services(var_dir: Path, env: dict[str, str]) -> list[LocalService]:
    services = []
    for spec in installed_services().values():
        if not spec.queues and not spec.entrypoint:
            continue
        service_env = {**env, **dict(spec.local_env)}
        services.append(_start(spec, "run", spec.name, spec.health_port, var_dir, service_env))
        if spec.separate_worker and spec.queues:
            # The entry point is not the worker (the ops web process): its actors run beside it.
            worker = replace(spec, banner=None)
            services.append(_start(worker, "worker", f"{spec.name}-worker", spec.health_port + 1, var_dir, service_env))
    return services


def _start(spec: ServiceSpec, command: str, name: str, port: int, var_dir: Path, env: dict[str, str]) -> LocalService:
    """Start ``nightshift <command> <service>`` supervised, on the first free port from *port* (by hundreds)."""
    while not port_is_free(port):
        port += 100
    argv = [sys.executable, "-m", "nightshift.common.cli", command, spec.name, "--health-port", str(port)]
    child = SupervisedChild(name, argv, env, log_path=var_dir / "log" / f"{name}.log", new_session=True)
    child.start()
    return LocalService(spec, port, child)


def _restart_dead(services: list[LocalService]) -> None:
    for child, code in restart_dead(service.child for service in services):
        print(f"{child.name} exited ({code}); restarted — see {child.log_path}")


def _demo_tick(factory: object, demos: list[object]) -> None:
    # Each hook on its own: one that cannot run yet (no user to write a post) must not starve the others.
    for demo in demos:
        try:
            demo(factory)  # type: ignore[operator]
        except Exception as error:
            print(f"demo        skipped: {type(error).__name__}: {error}")


def _banner_lines(services: list[LocalService], factory: object) -> list[str]:
    """What each started service's ``banner`` hook has to say (the dashboard and its login)."""
    lines: list[str] = []
    for service in services:
        if service.spec.banner:
            hook: Any = load_object(service.spec.banner)
            lines += [f"  {line}" for line in hook(factory, f"http://127.0.0.1:{service.port}")]
    return lines


def _print_banner(services: list[LocalService], var_dir: Path, extra: list[str]) -> None:
    lines = ["", "Nightshift is running. Where to look:"]
    for service in services:
        base = f"http://127.0.0.1:{service.port}"
        status = f"  {base}/status" if not service.spec.queues and not service.spec.banner else ""
        lines.append(f"  {service.child.name:<14} {base}/livez  {base}/readyz  {base}/metrics{status}")
    lines += [
        f"  outbox (mail)  {var_dir / 'outbox'}",
        f"  storage        {var_dir / 'storage'}",
        f"  logs           {var_dir / 'log'}",
        *extra,
        "",
        "Try, in another terminal:",
        "  .venv/bin/nightshift status",
        "  .venv/bin/nightshift publish user.registered '{\"user_id\": 1}'",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)
