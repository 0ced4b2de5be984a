"""What a service is, and how the platform finds the installed ones.

Each service package declares a :class:`ServiceSpec` and registers it under the
``nightshift.services`` entry-point group, so the CLI, the local runner, the
migrations and the scheduler discover services without importing them by name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from nightshift.common.lanes import Lane, queue_name
from nightshift.common.memory_bound import MemoryBound

#: The entry-point group services register their spec under.
ENTRY_POINT_GROUP = "nightshift.services"


@dataclass(frozen=True)
class ServiceSpec:
    """A service's shape.

    Parameters:
      name: Short name, also the queue prefix (``users``).
      lanes: The lanes it consumes; one queue each.
      settings: ``module:Class`` of its settings, loaded when its worker starts, so that a
        missing or malformed variable stops the worker at once, naming the variable.
      actors_module: Imported by the worker to declare the actors.
      schedules_module: Where its periodic jobs are declared, if any.
      migrations_dir: Alembic versions of its own tables, if any.
      threads: Worker threads per process (the I/O-bound profile wants many).
      processes: Worker processes (the CPU-bound profile wants several).
      memory_bound: Run the memory-bound profile (one message at a time per process, a
        memory limit, processes replaced after ``max_tasks`` messages); see
        :mod:`nightshift.common.memory_bound`. ``threads`` and ``processes`` are then ignored.
      health_port: Port of its health server when run locally.
      entrypoint: ``module:function`` taking the spec and returning an exit code: the
        service's ``worker.main``, which ``nightshift run`` calls. None runs a plain
        worker (``run_worker``).
      demo: ``module:function`` called every few seconds by ``nightshift up`` to make
        demo traffic; it takes a ``sessionmaker`` (``sessions``) on the platform's database.
      banner: ``module:function`` called once by ``nightshift up`` after the migrations, with a
        ``sessionmaker`` and the service's local base URL (``http://127.0.0.1:<port>``); the
        lines it returns are printed in the banner (the ops service creates the local
        operator there and prints the dashboard's address and credentials).
      local_env: Variables ``nightshift up`` sets for this service only (local-only choices,
        such as letting webhooks reach the runner's own receiver on loopback).
      separate_worker: The entry point does not consume the lanes (the ops web process):
        the actors run in a second process, ``nightshift worker <name>``, on health port
        ``health_port + 1``; ``nightshift up`` starts both.
    """

    name: str
    lanes: tuple[Lane, ...]
    settings: str | None = None
    actors_module: str | None = None
    schedules_module: str | None = None
    migrations_dir: Path | None = None
    threads: int = 8
    processes: int = 1
    memory_bound: MemoryBound | None = None
    health_port: int = 8100
    entrypoint: str | None = None
    demo: str | None = None
    banner: str | None = None
    local_env: tuple[tuple[str, str], ...] = ()
    separate_worker: bool = False

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(queue_name(self.name, lane) for lane in self.lanes)


def load_object(path: str) -> object:
    """Import ``module:attribute``."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def installed_services() -> dict[str, ServiceSpec]:
    """Every service installed in this environment, by name."""
    services = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        spec = entry.load()
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"entry point {entry.name!r} does not name a ServiceSpec")
        services[spec.name] = spec
    return dict(sorted(services.items()))


def get_service(name: str) -> ServiceSpec:
    """The installed service called *name*.

    Raises:
      KeyError: Naming the services that are installed.
    """
    services = installed_services()
    if name not in services:
        raise KeyError(f"unknown service {name!r} (installed: {', '.join(services) or 'none'})")
    return services[name]
