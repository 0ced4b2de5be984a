"""The chaos suite's harness: steady load, faults, and the count of what happened.

A :class:`Load` publishes idempotent tasks (``tests.support.chaos_service``) at a
steady rate from a thread (enqueued, published as an event, or committed
through the transactional outbox) and remembers which were accepted and which
were refused with an error; :func:`count_effects` then reads ``chaos_effects``
and says, for the accepted ones, how many were applied once, twice or never.
:class:`Report` is one row of the table the suite prints and writes to
``var/chaos/report.md``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import redis
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from nightshift.common.local.embedded import redis_server_binary
from nightshift.common.processes import free_port, stop_processes, wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.redis_ha import NotReplicated
from tests.support.chaos_service import REQUESTED, task_message
from tests.support.processes import REPO_ROOT, child_env

#: Where the suite writes its table (one row per scenario run).
REPORT_PATH = REPO_ROOT / "var" / "chaos" / "report.md"

#: Whether the long forms run (``make chaos`` sets it).
LONG = os.environ.get("CHAOS_LONG", "") not in ("", "0")


@dataclass
class Report:
    """What one scenario did and how it came out."""

    scenario: str
    published: int
    refused: int
    applied_once: int
    applied_twice: int
    lost: int
    recover_s: float
    notes: str = ""

    HEADER = (
        "| scenario | published | refused (error) | applied once | applied twice | lost | time to recover | notes |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|"
    )

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.published} | {self.refused} | {self.applied_once} | {self.applied_twice} "
            f"| {self.lost} | {self.recover_s:.1f} s | {self.notes} |"
        )

    def write(self) -> None:
        """Print the row and append it to :data:`REPORT_PATH`."""
        REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
        new = not REPORT_PATH.exists()
        with open(REPORT_PATH, "a") as report:
            if new:
                report.write(self.HEADER + "\n")
            report.write(self.row() + "\n")
        print("\n" + self.HEADER + "\n" + self.row())


@dataclass
class Load:
    """Publish ``<service>_apply`` tasks at *rate* per second from a thread.

    Parameters:
      broker: Where to publish.
      service: ``chaossvc``, ``chaosalt`` or ``chaosmem``.
      prefix: Task ids are ``<prefix>-<n>``.
      rate: Tasks per second.
      work_ms: How long each task works before applying its effect.
      via: ``enqueue`` the task's message; ``publish`` the event ``chaos.requested`` (whose
        subscriber is ``chaossvc_apply``) through ``events.publish``; or commit an order
        through the ``outbox``: one transaction inserts the business row (``chaos_orders``)
        and the event (``publish_in_transaction``), so the order is accepted once
        PostgreSQL commits, whatever Redis is doing, and an
        :class:`~nightshift.common.outbox.OutboxRelay` forwards it.
      engine: The database of the orders and the outbox (``via="outbox"``).
    """

    broker: NightshiftRedisBroker
    service: str
    prefix: str
    rate: float = 40.0
    work_ms: int = 20
    via: Literal["enqueue", "publish", "outbox"] = "enqueue"
    engine: Engine | None = None
    accepted: list[str] = field(default_factory=list)
    #: ``time.monotonic()`` of each accepted publish (the interruption is the longest gap).
    accepted_at: list[float] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    #: Each error the publisher was told, as ``<kind>: <message>``, and how often.
    errors: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, name=f"load-{self.prefix}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def accepted_between(self, start: float, end: float) -> list[str]:
        """The tasks accepted between two ``time.monotonic()`` readings."""
        return [task for task, at in zip(self.accepted, self.accepted_at, strict=False) if start <= at <= end]

    def _run(self) -> None:
        interval = 1 / self.rate
        due = time.monotonic()
        number = 0
        while not self._stop.is_set():
            task_id = f"{self.prefix}-{number}"
            number += 1
            try:
                self._publish(task_id)
                self.accepted.append(task_id)
                self.accepted_at.append(time.monotonic())
            except (redis.RedisError, NotReplicated, SQLAlchemyError) as error:
                # The publisher is told at once: the task is not accepted, nothing is half-sent.
                self.refused[type(error).__name__] += 1
                self.errors[f"{type(error).__name__}: {error}"] += 1
            due += interval
            self._stop.wait(max(0.0, due - time.monotonic()))

    def _publish(self, task_id: str) -> None:
        if self.via == "enqueue":
            self.broker.enqueue(task_message(self.service, task_id, work_ms=self.work_ms))
            return
        # Imported here: the other scenarios' test processes never load the event catalog.
        from nightshift.common.events import publish
        from nightshift.common.outbox import publish_in_transaction

        payload = {"task_id": task_id, "work_ms": self.work_ms}
        if self.via == "publish":
            publish(REQUESTED.name, payload, broker=self.broker)
            return
        assert self.engine is not None, "via='outbox' needs the engine"
        with Session(self.engine) as session, session.begin():
            session.execute(text("INSERT INTO chaos_orders (task_id) VALUES (:task)"), {"task": task_id})
            publish_in_transaction(session, REQUESTED.name, payload)


@dataclass(frozen=True)
class Effects:
    once: int
    twice: int
    lost: list[str]


def count_effects(engine: Engine, task_ids: list[str]) -> Effects:
    """How many of *task_ids* were applied once, more than once, and not at all."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT task_id, count(*) FROM chaos_effects GROUP BY task_id")).all()
    counts: dict[str, int] = {str(task): int(n) for task, n in rows}
    once = sum(1 for task in task_ids if counts.get(task) == 1)
    twice = sum(1 for task in task_ids if counts.get(task, 0) > 1)
    return Effects(once=once, twice=twice, lost=[task for task in task_ids if task not in counts])


def wait_applied(engine: Engine, task_ids: list[str], *, timeout: float) -> float:
    """Wait until every one of *task_ids* has its effect; return when that was (``time.monotonic()``).

    Raises:
      TimeoutError: Naming how many are still missing.
    """

    def done() -> bool:
        return not count_effects(engine, task_ids).lost

    try:
        wait_for(done, timeout=timeout, interval=0.2, what="every accepted task applied")
    except TimeoutError:
        missing = count_effects(engine, task_ids).lost
        raise TimeoutError(f"{len(missing)} of {len(task_ids)} tasks never applied, e.g. {missing[:5]}") from None
    return time.monotonic()


def wait_applied_each(engine: Engine, groups: dict[str, list[str]], *, timeout: float) -> dict[str, float]:
    """Wait until every task of every group is applied; return when each group was (``time.monotonic()``).

    Raises:
      TimeoutError: Naming, per group, how many are still missing.
    """
    done: dict[str, float] = {}

    def all_done() -> bool:
        for name, task_ids in groups.items():
            if name not in done and not count_effects(engine, task_ids).lost:
                done[name] = time.monotonic()
        return len(done) == len(groups)

    try:
        wait_for(all_done, timeout=timeout, interval=0.2, what="every accepted task applied")
    except TimeoutError:
        missing = {name: len(count_effects(engine, ids).lost) for name, ids in groups.items() if name not in done}
        raise TimeoutError(f"tasks never applied, per group: {missing}") from None
    return done


def child_pids(pid: int) -> list[int]:
    """The pids of *pid*'s children (Linux: ``/proc/<pid>/task/*/children``)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return children


class Workers:
    """Real worker processes of a chaos service, which the test may kill and restart.

    Parameters:
      service: ``chaossvc`` or ``chaosmem``.
      count: How many processes.
      logs: The folder their output goes to.
      mode: ``worker`` (one process each) or ``pool`` (a memory-bound pool each).
      env: Variables added to the children's environment.
    """

    def __init__(
        self, service: str, count: int, logs: Path, *, mode: str = "worker", env: dict[str, str] | None = None
    ) -> None:
        self.service = service
        self.logs = logs
        self.mode = mode
        self.env = {"HEALTH_HOST": "127.0.0.1", **(env or {})}
        self.processes: list[subprocess.Popen[bytes]] = []
        #: Health port of each process (the pool's first child, in pool mode).
        self.health_ports: list[int] = []
        self.started = 0
        logs.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            self.processes.append(self._start())

    def _start(self, health_port: int | None = None) -> subprocess.Popen[bytes]:
        self.started += 1
        command = [sys.executable, "-m", "tests.support.chaos_service", self.mode, self.service]
        if self.mode == "worker":
            port = health_port or free_port()
            if health_port is None:
                self.health_ports.append(port)
            command += ["--threads", "4", "--health-port", str(port)]
        with open(self.logs / f"{self.service}-{self.started}.log", "ab") as log:
            return subprocess.Popen(command, env=child_env(self.env), stdout=log, stderr=subprocess.STDOUT)

    def kill_child(self, index: int, choose: Callable[[list[int]], int]) -> bool:
        """SIGKILL one worker process of pool *index* (picked by *choose*); the pool replaces it.

        Returns:
          Whether there was one to kill (a pool may be between a death and its restart).
        """
        children = child_pids(self.processes[index].pid)
        if not children:
            return False
        try:
            os.kill(choose(children), signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def kill(self, index: int) -> None:
        """SIGKILL process *index* and start a new one in its place (what an orchestrator does)."""
        victim = self.processes[index]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.processes[index] = self._start(self.health_ports[index] if self.health_ports else None)

    def livez(self, index: int) -> bool:
        """Whether process *index* answers ``/livez`` with 200 within two seconds."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_ports[index]}/livez", timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.processes)

    def stop(self) -> list[int | None]:
        """SIGTERM every process (SIGKILL after a grace period); return their exit codes."""
        stop_processes(self.processes, grace_s=30)
        return [process.returncode for process in self.processes]


class ChaosRedis:
    """A ``redis-server`` of the test's own, with the append-only file on, that the test restarts.

    Parameters:
      data_dir: Its data folder (the AOF lives there across restarts).
      appendfsync: ``everysec`` (the recommended default) or ``always``.
      extra: More ``redis-server`` arguments.
    """

    def __init__(self, data_dir: Path, *, appendfsync: str = "everysec", extra: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.appendfsync = appendfsync
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ChaosRedis:
        with open(self.data_dir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    redis_server_binary(),
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--dir", str(self.data_dir),
                    "--save", "",
                    "--appendonly", "yes",
                    "--appendfsync", self.appendfsync,
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                # A restarted server answers LOADING while it replays its AOF.
                return bool(client.ping())
            except (redis.ConnectionError, redis.BusyLoadingError):
                return False

        wait_for(answers, timeout=timeout, interval=0.05, what=f"redis-server on {self.port}")
        client.close()

    def shutdown(self) -> None:
        """Stop it gracefully (SIGTERM: it flushes its AOF and exits)."""
        assert self.process is not None
        stop_processes([self.process], grace_s=30)

    def kill(self) -> None:
        """SIGKILL it: whatever it had not written to the AOF is gone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_processes([self.process], grace_s=10)


def measure(action: Callable[[], object]) -> float:
    """Seconds *action* took."""
    started = time.monotonic()
    action()
    return time.monotonic() - started
