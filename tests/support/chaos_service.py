"""Test-only services for the chaos suite, run as real worker processes.

Three services share one idempotent actor body, each on a queue of its own:
``chaossvc`` and ``chaosalt`` (threaded workers, like most services) and
``chaosmem`` (the memory-bound profile), which also has the poison actors of
scenario 7. ``chaos.requested`` (:data:`REQUESTED`, added to the event catalog
by the tests that publish it) is the event whose subscriber is
``chaossvc_apply``: the outbox scenario publishes it with a business row
(``chaos_orders``) in one transaction. Each task's effect is one row in
``chaos_effects``, written in the same transaction as its idempotency key, so
the suite counts effects applied once, twice or never from PostgreSQL; each
execution (including redeliveries) is counted in the Redis hash :data:`RUNS_KEY`.

``python -m tests.support.chaos_service worker NAME [--threads N] [--health-port P]``
runs one worker through :func:`nightshift.common.worker.run_worker`;
``python -m tests.support.chaos_service pool NAME`` runs the memory-bound pool
through :func:`nightshift.common.worker_pool.run_worker_pool`.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import threading
import time

import dramatiq
from dramatiq import Message
from pydantic import Field
from sqlalchemy import Engine, text

from nightshift.common import runtime
from nightshift.common.contracts import Contract, Payload
from nightshift.common.db.engine import transaction
from nightshift.common.events.catalog import CATALOG
from nightshift.common.events.spec import EventSpec, Subscriber
from nightshift.common.idempotency import claim
from nightshift.common.lanes import Lane
from nightshift.common.memory_bound import MemoryBound
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(name="chaossvc", lanes=(Lane.HIGH,), actors_module="tests.support.chaos_service", threads=4)
MEMORY_SERVICE = ServiceSpec(
    name="chaosmem",
    lanes=(Lane.HIGH,),
    actors_module="tests.support.chaos_service",
    memory_bound=MemoryBound(max_tasks=20, max_memory_mb=300, processes=2, hang_grace_ms=1000),
)
ALT_SERVICE = ServiceSpec(name="chaosalt", lanes=(Lane.HIGH,), actors_module="tests.support.chaos_service", threads=2)
SERVICES = {spec.name: spec for spec in (SERVICE, ALT_SERVICE, MEMORY_SERVICE)}


class ChaosTask(Payload):
    task_id: str = Field(min_length=1, max_length=200)
    work_ms: int = Field(default=0, ge=0, le=60_000)


#: ``chaossvc_apply`` as a contract, the subscriber of :data:`REQUESTED`.
APPLY = Contract(service="chaossvc", actor_name="chaossvc_apply", lane=Lane.HIGH, payload=ChaosTask)
#: The event the outbox scenario publishes (tests add it to the catalog with ``monkeypatch.setitem``).
REQUESTED = EventSpec(name="chaos.requested", version=1, schema=ChaosTask, subscribers=(Subscriber(APPLY),))

#: Redis hash (application database): task id → how many times it ran.
RUNS_KEY = "chaos:runs"
#: Redis hash: task id → pid of the process that ran it last (the memory-bound tests).
PIDS_KEY = "chaos:pids"

#: Redis bitmap (application database): bit *n* set once backlog message *n* ran.
BACKLOG_BITS = "chaos:backlog"
#: Redis counter: backlog messages that found their bit already set (ran twice).
BACKLOG_TWICE = "chaos:backlog:twice"

#: The effects table: one row per applied effect (a task applied twice has two).
DDL = """
CREATE TABLE IF NOT EXISTS chaos_effects (
    id bigserial PRIMARY KEY,
    task_id text NOT NULL,
    pid int NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

#: The business table of the outbox scenario: one row per order, committed with its event.
ORDERS_DDL = """
CREATE TABLE IF NOT EXISTS chaos_orders (
    task_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

#: Megabytes the leaking actor adds per step.
LEAK_STEP_MB = 16


def ensure_tables(engine: Engine) -> None:
    """Create (and empty) the effects and orders tables."""
    with engine.begin() as connection:
        connection.execute(text(DDL))
        connection.execute(text(ORDERS_DDL))
        connection.execute(text("TRUNCATE chaos_effects, chaos_orders"))


def apply_effect(task_id: str, work_ms: int) -> None:
    """The idempotent task: count the run, work a little, apply the effect once."""
    runtime.app_redis().hincrby(RUNS_KEY, task_id, 1)
    runtime.app_redis().hset(PIDS_KEY, task_id, os.getpid())
    if work_ms:
        time.sleep(work_ms / 1000)
    with transaction(runtime.session_factory()) as session:
        if claim(session, f"chaos:{task_id}"):
            session.execute(
                text("INSERT INTO chaos_effects (task_id, pid) VALUES (:task, :pid)"),
                {"task": task_id, "pid": os.getpid()},
            )


def task_message(service: str, task_id: str, *, work_ms: int = 0, actor: str = "apply") -> Message[object]:
    """The message of one chaos task for *service*'s high lane."""
    kwargs: dict[str, object] = {"task_id": task_id}
    if actor == "apply":
        kwargs["work_ms"] = work_ms
    return Message(queue_name=f"{service}_high", actor_name=f"{service}_{actor}", args=(), kwargs=kwargs, options={})


def declare_actors() -> None:
    @dramatiq.actor(queue_name="chaossvc_high", actor_name="chaossvc_apply")
    def chaossvc_apply(task_id: str, work_ms: int = 0) -> None:
        apply_effect(task_id, work_ms)

    @dramatiq.actor(queue_name="chaossvc_high", actor_name="chaossvc_mark")
    def chaossvc_mark(n: int) -> None:
        """The backlog's task: as small as a task gets, its effect one bit."""
        client = runtime.app_redis()
        if client.setbit(BACKLOG_BITS, n, 1):
            client.incr(BACKLOG_TWICE)

    @dramatiq.actor(queue_name="chaosalt_high", actor_name="chaosalt_apply")
    def chaosalt_apply(task_id: str, work_ms: int = 0) -> None:
        apply_effect(task_id, work_ms)

    @dramatiq.actor(queue_name="chaosmem_high", actor_name="chaosmem_apply")
    def chaosmem_apply(task_id: str, work_ms: int = 0) -> None:
        apply_effect(task_id, work_ms)

    @dramatiq.actor(queue_name="chaosmem_high", actor_name="chaosmem_segfault")
    def chaosmem_segfault(task_id: str) -> None:
        runtime.app_redis().hincrby(RUNS_KEY, task_id, 1)
        ctypes.string_at(0)  # reads address 0: SIGSEGV, the interpreter dies

    @dramatiq.actor(queue_name="chaosmem_high", actor_name="chaosmem_leak")
    def chaosmem_leak(task_id: str) -> None:
        runtime.app_redis().hincrby(RUNS_KEY, task_id, 1)
        hoard = []
        while True:
            hoard.append(bytearray(LEAK_STEP_MB * 2**20))
            time.sleep(0.02)

    @dramatiq.actor(queue_name="chaosmem_high", actor_name="chaosmem_hang", time_limit=1000)
    def chaosmem_hang(task_id: str) -> None:
        runtime.app_redis().hincrby(RUNS_KEY, task_id, 1)
        threading.Event().wait()  # blocks in C: TimeLimitExceeded never lands


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chaos_service")
    parser.add_argument("mode", choices=("worker", "pool"))
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--health-port", type=int, default=0)
    args = parser.parse_args(argv)
    # Every process of a deployment shares one catalog: the worker's outbox relay knows the test's event.
    CATALOG.setdefault(REQUESTED.name, REQUESTED)
    spec = SERVICES[args.service]
    if args.mode == "pool":
        from nightshift.common.memory_bound import memory_bound_profile
        from nightshift.common.worker_pool import run_worker_pool

        profile = memory_bound_profile(spec.name, spec.memory_bound)
        assert profile is not None, f"{spec.name} is not memory-bound"
        command = [sys.executable, "-m", "tests.support.chaos_service", "worker", spec.name]
        return run_worker_pool(
            spec, processes=profile.processes, threads=1, health_port=0, check_interval_s=0.1, command=command
        )
    from nightshift.common.worker import run_worker

    return run_worker(spec, threads=args.threads, health_port=args.health_port)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
else:
    declare_actors()
