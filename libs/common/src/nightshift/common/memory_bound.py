"""The memory-bound worker profile: one task at a time, a memory limit, replaced after N tasks.

Long-lived Python processes that build large objects (an export, a user's
archive) keep their peak memory: CPython rarely returns freed arenas to the
system, and a leak in a library grows until the container is killed mid-task.
This profile bounds that, as Celery's ``max_tasks_per_child`` and
``max_memory_per_child`` do: each process runs one message at a time and is
replaced *between* messages once it has run :attr:`MemoryBound.max_tasks`
messages or its resident memory passed :data:`RECYCLE_SHARE` of the limit. A
message that drives the process past the limit itself, or hangs past its time
limit where Dramatiq's asynchronous exception cannot reach it (inside C code),
ends the process at once; the message is then redelivered and, once its process
has died as many times as it has attempts, dead-lettered with the reason
(:class:`~nightshift.common.middleware.recycling.Recycling`).

A service chooses the profile in its :class:`~nightshift.common.service.ServiceSpec`
(``memory_bound=MemoryBound(...)``); ``<SERVICE>_MAX_TASKS_PER_PROCESS``,
``<SERVICE>_MAX_MEMORY_MB`` and ``<SERVICE>_PROCESSES`` override its figures per
deployment, and ``<SERVICE>_MEMORY_BOUND=true`` gives the profile to a service
whose spec does not ask for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings, load_settings

#: Exit code of a worker process that ends on purpose to be replaced: its
#: supervisor restarts it at once, without the crash-loop back-off.
RECYCLE_EXIT_CODE = 75

#: Between messages, a process above this share of its memory limit is replaced.
RECYCLE_SHARE = 0.8


@dataclass(frozen=True)
class MemoryBound:
    """The figures of the memory-bound profile.

    Parameters:
      max_tasks: Messages a process runs before it is replaced.
      max_memory_mb: Resident memory limit of a process: above it a running message
        ends the process; above :data:`RECYCLE_SHARE` of it the process is replaced
        after its message.
      processes: Worker processes (each with one thread and one message at a time).
      hang_grace_ms: How long past its time limit a message may run (stuck where
        Dramatiq's ``TimeLimitExceeded`` cannot interrupt it) before its process ends.
    """

    max_tasks: int = 100
    max_memory_mb: int = 1024
    processes: int = 2
    hang_grace_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.max_tasks < 1 or self.max_memory_mb < 16 or self.processes < 1 or self.hang_grace_ms < 0:
            raise ValueError(f"invalid memory-bound profile {self}: tasks, processes >= 1, memory >= 16 MB")

    @property
    def max_memory_bytes(self) -> int:
        return self.max_memory_mb * 1024 * 1024

    @property
    def recycle_memory_bytes(self) -> int:
        return int(self.max_memory_bytes * RECYCLE_SHARE)


class MemoryBoundSettings(ServiceSettings):
    """Per-deployment overrides, read with the service's prefix (``POSTS_MAX_MEMORY_MB``)."""

    memory_bound: bool | None = None
    max_tasks_per_process: int | None = Field(default=None, ge=1)
    max_memory_mb: int | None = Field(default=None, ge=16)
    processes: int | None = Field(default=None, ge=1)
    hang_grace_ms: int | None = Field(default=None, ge=0)


def memory_bound_profile(service: str, declared: MemoryBound | None) -> MemoryBound | None:
    """The profile service *service* runs with: its spec's, overridden by its environment.

    Parameters:
      service: The service's name; its variables are prefixed ``<SERVICE>_``.
      declared: What its spec declares (None: not memory-bound unless the environment says so).

    Returns:
      The profile, or None when the service does not run memory-bound.

    Raises:
      SystemExit: Naming a malformed variable (see ``settings.load_settings``).
    """
    prefix = f"{service.upper()}_"
    prefixed = type(
        f"{service.title()}MemoryBoundSettings",
        (MemoryBoundSettings,),
        {"model_config": SettingsConfigDict(env_prefix=prefix)},
    )
    overrides: MemoryBoundSettings = load_settings(prefixed)
    enabled = declared is not None if overrides.memory_bound is None else overrides.memory_bound
    if not enabled:
        return None
    profile = declared or MemoryBound(processes=max(1, os.cpu_count() or 1))
    changes = {
        "max_tasks": overrides.max_tasks_per_process,
        "max_memory_mb": overrides.max_memory_mb,
        "processes": overrides.processes,
        "hang_grace_ms": overrides.hang_grace_ms,
    }
    return replace(profile, **{name: value for name, value in changes.items() if value is not None})


def resident_memory_bytes() -> int:
    """This process's resident set size now (Linux ``/proc``; the peak elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
