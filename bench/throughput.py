"""Throughput and latency of a Nightshift worker against bare Dramatiq, on the same Redis.

Three measurements, each in fresh subprocesses so no state leaks between stacks:

* **drain throughput, as deployed** — for each run and each stack (alternating),
  *N* no-op messages are enqueued through the stack's own broker (the enqueue
  rate is reported) and set aside; then the workers start the way each stack
  is deployed and, once every worker process is up and idle, the messages are
  put back on the queue at once (``RENAME``). Nightshift's side is
  :func:`nightshift.common.worker.run_worker` — the function ``nightshift run
  <service>`` calls in production — on a bench-only service spec
  (:mod:`bench.noop_service`): every lane's queue and delay queue, the health
  server, the outbox relay, liveness, job records and audit rows in PostgreSQL,
  production's middleware stack and settings. Bare Dramatiq's side is its own
  ``dramatiq`` command (:mod:`bench.bare_dramatiq`) with the same processes and
  threads. Both use the same client stack (redis-py with hiredis). Reported:
  the *steady rate* (messages per second while the backlog goes from 75 % to
  10 % of *N*, which leaves out start-up and Dramatiq's idle back-off), the
  *drain rate* (*N* over the time from putting the messages back until the
  queue and every ack set are empty), and the workers' CPU time per message,
  read from ``/proc`` for every process of each worker (for Nightshift, until
  every job record and audit row is written — which is checked after each run);
* **idle pickup** — an idle worker, one message at a time after a random pause:
  the time from just before the send until the actor starts (the actor stores
  ``time.time()`` in Redis);
* **publish latency** — ``nightshift.common.events.publish("user.registered", …)``
  call by call, next to a bare Dramatiq ``send()``.

Stacks: ``nightshift`` is the deployed worker above (its enqueue side is
``build_broker(settings)``); ``dramatiq`` is ``RedisBroker(url=…)`` with
Dramatiq's default middleware. For profiling, ``nightshift-without-A+B`` drops
the middleware classes named A and B (WorkerLiveness cannot be dropped from a
deployed worker), and a ``:otlp`` suffix traces with the OpenTelemetry SDK,
spans encoded as OTLP and discarded (without it, as in a deployment with no
``OTEL_EXPORTER_OTLP_ENDPOINT``, the tracing middleware runs against
OpenTelemetry's no-op tracer). For the latency measurements only,
``nightshift-broker`` is Nightshift's broker with Dramatiq's default middleware.

Run it with ``python -m bench.throughput`` (``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, text

from bench._common import ROOT, WORKDIR, Servers, header, median, percentile, servers
from bench.noop_service import NAP, NOOP, SERVICE, STAMP, STAMPS_KEY, Nap, Nothing
from nightshift.common.db.engine import make_engine
from nightshift.common.redis_keys import RedisKeys

#: The queue every benchmark message goes to.
QUEUE = NOOP.queue_name

#: The broker's key names (Nightshift and bare Dramatiq share Dramatiq's default namespace).
KEYS = RedisKeys()

#: Where the enqueued messages' ids wait while the workers start (outside Dramatiq's namespace).
STAGED_KEY = "bench:staged"


#: The publish-while-draining publisher's handshake keys (outside Dramatiq's namespace).
READY_KEY, GO_KEY, STOP_KEY = "bench:publisher-ready", "bench:publisher-go", "bench:publisher-stop"

#: Between two timed publications while the workers drain.
PUBLISH_GAP_S = 0.002

#: How often the drained condition is polled.
POLL_INTERVAL_S = 0.005

#: The steady rate is measured while the backlog falls from this share of the messages…
STEADY_FROM = 0.75

#: …to this one.
STEADY_TO = 0.10

#: Once every worker process is up, it idles this long before the messages come back.
SETTLE_S = 1.0

#: The stacks compared by default.
DEFAULT_STACKS = ("nightshift", "dramatiq")


# --- the stacks -----------------------------------------------------------------------


def apply_variant(stack: str) -> str:
    """Set this process up for *stack*'s variant; return the stack's base name.

    A ``:otlp`` suffix installs the discarding OTLP exporter; ``nightshift-without-A+B``
    drops the middleware classes A and B from the stack ``build_broker`` declares.

    Raises:
      ValueError: For an unknown feature or stack name.
    """
    from nightshift.common import broker as nightshift_broker

    stack, _, feature = stack.partition(":")
    if feature == "otlp":
        install_discarding_otlp()
    elif feature:
        raise ValueError(f"unknown feature {feature!r}: only :otlp is known")
    if stack in {"dramatiq", "nightshift-broker"}:
        return stack
    base, _, dropped = stack.partition("-without-")
    if base != "nightshift":
        raise ValueError(
            f"unknown stack {stack!r}: use nightshift[:otlp], nightshift-without-A+B, nightshift-broker or dramatiq"
        )
    if dropped:
        names = set(dropped.split("+"))
        full_stack = nightshift_broker.middleware_stack

        def reduced(*args: Any, **kwargs: Any) -> list[Any]:
            return [m for m in full_stack(*args, **kwargs) if type(m).__name__ not in names]

        nightshift_broker.middleware_stack = reduced  # type: ignore[assignment]
    return base


def make_broker(stack: str) -> dramatiq.Broker:
    """Build *stack*'s broker from the environment and make it Dramatiq's global broker.

    Raises:
      ValueError: For an unknown stack name.
    """
    from nightshift.common import broker as nightshift_broker
    from nightshift.common.encoder import install_encoder
    from nightshift.common.redis_broker import NightshiftRedisBroker
    from nightshift.common.runtime import settings

    base = apply_variant(stack)
    if base == "dramatiq":
        broker = RedisBroker(url=settings().broker_url)  # type: ignore[no-untyped-call]
        dramatiq.set_broker(broker)
        return broker
    if base == "nightshift-broker":
        # Nightshift's consumer with Dramatiq's own middleware: the broker's share alone.
        from dramatiq.middleware import default_middleware

        install_encoder()
        broker = NightshiftRedisBroker(url=settings().broker_url, middleware=[m() for m in default_middleware])
        dramatiq.set_broker(broker)
        return broker
    return nightshift_broker.build_broker(settings())


def install_discarding_otlp() -> None:
    """Trace with the SDK and a batch processor, encoding spans as OTLP but sending them nowhere.

    The worker pays for what production pays for (span objects, the batch
    processor's thread, protobuf encoding), not for a collector's network.
    """
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from nightshift.common.tracing import configure_tracing

    class DiscardingOtlpExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            encode_spans(spans).SerializeToString()
            return SpanExportResult.SUCCESS

    configure_tracing("bench", otlp_endpoint=None, extra_processor=BatchSpanProcessor(DiscardingOtlpExporter()))


def declare_actors(broker: dramatiq.Broker, control: redis.Redis[bytes]) -> dict[str, dramatiq.Actor[Any, Any]]:
    """The no-op actor and the actor that stamps the time it starts."""

    def noop() -> None:
        """Does nothing: the benchmark measures the machinery around it."""

    def stamp() -> None:
        control.rpush(STAMPS_KEY, repr(time.time()))

    return {
        fn.__name__: dramatiq.actor(queue_name=QUEUE, actor_name=f"bench_{fn.__name__}", broker=broker)(fn)
        for fn in (noop, stamp)
    }


def control_client(url: str | None = None) -> redis.Redis[bytes]:
    """A client for the control lists; blocking reads may wait longer than redis-py's default timeout."""
    return redis.Redis.from_url(url or os.environ["BENCH_BROKER_URL"], socket_timeout=None)


# --- subprocess roles -----------------------------------------------------------------


def role_enqueue(stack: str, messages: int, task_ms: float = 0.0) -> None:
    """Enqueue *messages* messages through *stack*'s broker (records included).

    No-op messages, or with *task_ms* messages of the actor that sleeps that long.
    """
    if stack.startswith("dramatiq"):
        from bench import bare_dramatiq

        broker: dramatiq.Broker = bare_dramatiq.broker

        def send() -> None:
            if task_ms:
                bare_dramatiq.bench_nap.send(task_ms)
            else:
                bare_dramatiq.bench_noop.send()
    else:
        broker = make_broker(stack)
        nothing = Nothing()
        nap = Nap(ms=task_ms)

        def send() -> None:
            if task_ms:
                NAP.send(nap, broker=broker)
            else:
                NOOP.send(nothing, broker=broker)

    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(messages):
        send()
    elapsed = time.perf_counter() - started
    broker.close()  # flushes the "queued" job records: their CPU counts too
    cpu_us = (time.process_time() - cpu_started) / messages * 1e6
    print(json.dumps({"enqueue_per_s": messages / elapsed, "enqueue_cpu_us": cpu_us}))


def role_serve(stack: str, threads: int) -> None:
    """Run the bench service's worker as production does, until SIGTERM.

    Raises:
      ValueError: For a stack that is not a deployed Nightshift worker.
    """
    from bench import redis_calls
    from bench.gc_pause import install_gc_timer
    from nightshift.common.worker import run_worker

    install_gc_timer()
    redis_calls.install()
    if apply_variant(stack) != "nightshift":
        raise ValueError(f"{stack!r} is not a Nightshift worker stack")
    sys.exit(run_worker(SERVICE, threads=threads, health_port=0))


def role_pickup(stack: str, threads: int, count: int) -> None:
    """Time an idle worker's pickup of *count* messages sent after random pauses."""
    broker = make_broker(stack)
    control = control_client()
    stamp = declare_actors(broker, control)["stamp"]
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=threads)
    worker.start()
    time.sleep(1.5)  # let the consumer settle into its idle state
    rng = random.Random(7)
    latencies_ms = []
    for _ in range(count):
        time.sleep(rng.uniform(0.2, 1.2))
        sent = time.time()
        stamp.send()
        popped = control.blpop([STAMPS_KEY], timeout=10)
        if popped is None:
            raise SystemExit("a stamp message was not processed within 10 s")
        latencies_ms.append((float(popped[1]) - sent) * 1000)
    worker.stop(timeout=10_000)
    broker.close()
    print(json.dumps({"latencies_ms": latencies_ms}))


def role_publish(stack: str, count: int, synchronized: bool = False) -> None:
    """Time *count* publications of ``user.registered`` (or bare sends for ``dramatiq``).

    *synchronized* (the publish-while-draining measurement): after the warm-up,
    say so on :data:`READY_KEY`, wait for :data:`GO_KEY`, then publish one call
    every :data:`PUBLISH_GAP_S` until *count* calls or :data:`STOP_KEY`.
    """
    broker = make_broker(stack)
    if stack.startswith("dramatiq"):

        def sink(user_id: int) -> None:
            """Never runs: its queue has no consumer (it must not feed the queue being drained)."""

        sink_actor = dramatiq.actor(queue_name="bench_sink", actor_name="bench_sink", broker=broker)(sink)

        def call(user_id: int) -> None:
            sink_actor.send(user_id)
    else:
        from nightshift.common.events import publish

        def call(user_id: int) -> None:
            publish("user.registered", {"user_id": user_id})

    for user_id in range(1, 201):  # warm-up: imports, script loading, connections
        call(user_id)
    control: redis.Redis[bytes] | None = control_client() if synchronized else None
    if control is not None:
        control.rpush(READY_KEY, "1")
        control.blpop([GO_KEY], timeout=120)
    latencies_ms = []
    for user_id in range(1000, 1000 + count):
        started = time.perf_counter_ns()
        call(user_id)
        latencies_ms.append((time.perf_counter_ns() - started) / 1e6)
        if control is not None:
            if user_id % 20 == 0 and control.exists(STOP_KEY):
                break
            time.sleep(PUBLISH_GAP_S)
    broker.close()
    print(json.dumps({"latencies_ms": latencies_ms}))


def role_publish_many(stack: str, count: int, batch: int) -> None:
    """Publish *count* ``user.registered`` events in batches of *batch*; print events per second.

    With a checkout that has no ``publish_many`` (the "before"), one ``publish`` per event.
    """
    make_broker(stack)
    from nightshift.common import events

    publish_many = getattr(events, "publish_many", None)

    def send(user_ids: range) -> None:
        if publish_many is not None:
            publish_many("user.registered", [{"user_id": n} for n in user_ids])
        else:
            for n in user_ids:
                events.publish("user.registered", {"user_id": n})

    send(range(1, 201))  # warm-up
    started = time.perf_counter()
    for first in range(1000, 1000 + count, batch):
        send(range(first, min(first + batch, 1000 + count)))
    elapsed = time.perf_counter() - started
    print(json.dumps({"events_per_s": count / elapsed, "batched": publish_many is not None}))


# --- the driver -----------------------------------------------------------------------


def process_tree_cpu_s(roots: Sequence[int]) -> float:
    """CPU seconds (user + system, every thread) of *roots* and their live descendants, from ``/proc``."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after its last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree = set(roots)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree and pid not in tree}
        tree |= children
        grew = bool(children)
    return sum(times.get(pid, 0.0) for pid in tree)


class Driver:
    """Runs the subprocesses and watches Redis, PostgreSQL and ``/proc`` from outside."""

    def __init__(self, servers: Servers, *, code: Path | None = None) -> None:
        from nightshift.common.settings import with_redis_db

        self.env = servers.env()
        # ``code``: another checkout whose nightshift.common the subprocesses import
        # instead of this one's (the "before" of a before/after comparison).
        self.code = code
        paths = [str(ROOT), str(code / "libs" / "common" / "src") if code else None, self.env.get("PYTHONPATH")]
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        self.broker_url = with_redis_db(servers.redis_url, 1)
        self.env["BENCH_BROKER_URL"] = self.broker_url
        self.client = control_client(self.broker_url)
        self.engine: Engine = make_engine(servers.database_url, pool_size=1)
        self.cwd = WORKDIR / "throughput" / "cwd"
        self.cwd.mkdir(parents=True, exist_ok=True)

    def command(self, role: str, *args: object) -> list[str]:
        return [sys.executable, "-m", "bench.throughput", role, *(str(a) for a in args)]

    def worker_command(self, stack: str, threads: int) -> list[str]:
        """How *stack*'s worker process is started: the way it is deployed."""
        if stack.startswith("dramatiq"):
            return [
                sys.executable,
                "-m",
                "dramatiq",
                "bench.bare_dramatiq",
                "--processes",
                "1",
                "--threads",
                str(threads),
            ]
        return self.command("_serve", stack, threads)

    def run_json(self, role: str, *args: object) -> dict[str, Any]:
        done = subprocess.run(
            self.command(role, *args), env=self.env, cwd=self.cwd, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{role} {args} failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def reset(self) -> None:
        self.client.flushdb()
        with self.engine.begin() as connection:
            connection.execute(text("TRUNCATE job_records, task_audit"))

    def backlog(self) -> tuple[int, int]:
        """Messages ready on the queue, and messages stored but not yet acked (ready or fetched)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(KEYS.queue(QUEUE))
        pipe.hlen(KEYS.messages(QUEUE))
        ready, stored = pipe.execute()
        return int(ready), int(stored)

    def records(self) -> tuple[int, int]:
        """Audit rows, and job records whose status is ``done``."""
        with self.engine.connect() as connection:
            audit = connection.execute(text("SELECT count(*) FROM task_audit")).scalar_one()
            done = connection.execute(text("SELECT count(*) FROM job_records WHERE status = 'done'")).scalar_one()
        return int(audit), int(done)

    def drain(
        self,
        stack: str,
        messages: int,
        processes: int,
        threads: int,
        *,
        task_ms: float = 0.0,
        publish_during: int = 0,
        on_go: Callable[[list[int]], Callable[[], None]] | None = None,
    ) -> dict[str, Any]:
        """One drain run: enqueue and set aside, start the workers, put the messages back, time the drain.

        Parameters:
          task_ms: Messages of the actor that sleeps this long instead of no-ops.
          publish_during: Time up to this many publications (one every
            :data:`PUBLISH_GAP_S`) from another process while the workers drain.
          on_go: Called with the worker pids just before the messages are put back;
            what it returns is called once the queue is drained (a profiler's stop).
        """
        self.reset()
        enqueued = self.run_json("_enqueue", stack, messages, task_ms)
        queued = int(self.client.llen(KEYS.queue(QUEUE)))
        if queued != messages:
            raise RuntimeError(f"expected {messages} queued messages, found {queued}")
        self.client.rename(KEYS.queue(QUEUE), STAGED_KEY)  # type: ignore[no-untyped-call]
        # Only the workers' heartbeats count from here on (bare Dramatiq's enqueue writes one).
        self.client.delete(KEYS.heartbeats())
        with self.workers(stack, processes, threads) as (pids, alive):
            stop_probe = on_go(pids) if on_go else None
            publisher = self.start_publisher(stack, publish_during) if publish_during else None
            commands_at_go = self.commands()
            cpu_at_go = process_tree_cpu_s(pids)
            with self.client.pipeline(transaction=True) as pipe:
                pipe.rename(STAGED_KEY, KEYS.queue(QUEUE))
                pipe.rpush(KEYS.wake(QUEUE), *["1"] * processes)
                pipe.execute()
            go = time.perf_counter()
            marks: dict[str, float] = {}

            def drained() -> bool:
                alive()
                ready_count, stored = self.backlog()
                now = time.perf_counter()
                if stored <= messages * STEADY_FROM:
                    marks.setdefault("from", now)
                if stored <= messages * STEADY_TO:
                    marks.setdefault("to", now)
                return ready_count == 0 and stored == 0

            wait_until(drained, timeout_s=600, interval_s=POLL_INTERVAL_S)
            finished = time.perf_counter()
            if stop_probe is not None:
                stop_probe()
            publish_ms = publisher() if publisher is not None else None
            result: dict[str, Any] = {
                "steady_msgs_per_s": messages * (STEADY_FROM - STEADY_TO) / (marks["to"] - marks["from"]),
                "msgs_per_s": messages / (finished - go),
                "seconds": finished - go,
                "enqueue_per_s": enqueued["enqueue_per_s"],
                "enqueue_cpu_us": enqueued["enqueue_cpu_us"],
            }
            if stack.startswith("nightshift") and "JobRecords" not in stack:
                # Every message has its audit row and its job record, done: checked after each run.
                wait_until(lambda: self.records() == (messages, messages), timeout_s=120, interval_s=0.02)
                result["records_lag_s"] = time.perf_counter() - finished
            result["worker_cpu_us_per_msg"] = (process_tree_cpu_s(pids) - cpu_at_go) / messages * 1e6
            result["redis_commands_per_msg"] = commands_delta(commands_at_go, self.commands()) / messages
            if publish_ms is not None:
                result["publish_ms"] = publish_ms
        return result

    def start_publisher(self, stack: str, count: int) -> Callable[[], list[float]]:
        """Start a publisher ready to time *count* calls on :data:`GO_KEY`; give it the go.

        Returns a function that stops it and returns its latencies (ms).
        """
        self.client.delete(READY_KEY, GO_KEY, STOP_KEY)
        process = subprocess.Popen(
            self.command("_publish", stack, count, "1"),
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if self.client.blpop([READY_KEY], timeout=60) is None:
            process.kill()
            raise RuntimeError(f"the publisher did not start: {process.communicate()[1][-2000:]}")
        self.client.rpush(GO_KEY, "1")

        def stop() -> list[float]:
            self.client.rpush(STOP_KEY, "1")
            out, err = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"the publisher failed:\n{err[-3000:]}")
            latencies: list[float] = json.loads(out.strip().splitlines()[-1])["latencies_ms"]
            return latencies

        return stop

    def sender(
        self, stack: str, actor: str = STAMP.actor_name, *, queue: str = QUEUE, **kwargs: Any
    ) -> Callable[[], None]:
        """Send one message to *actor* on *queue*, through a broker of *stack*'s kind.

        No middleware on either side: both pay the same for the send, what differs
        is the workers' pickup.
        """
        from nightshift.common.redis_broker import NightshiftRedisBroker

        broker: dramatiq.Broker
        if stack.startswith("dramatiq"):
            broker = RedisBroker(url=self.broker_url, middleware=[])  # type: ignore[no-untyped-call]
        else:
            broker = NightshiftRedisBroker(url=self.broker_url, middleware=[])

        def send() -> None:
            broker.enqueue(dramatiq.Message(queue_name=queue, actor_name=actor, args=(), kwargs=kwargs, options={}))

        return send

    def commands(self) -> dict[str, int]:
        """Redis's ``INFO commandstats`` calls by command (the server is the benchmark's own)."""
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    @contextmanager
    def workers(self, stack: str, processes: int, threads: int) -> Iterator[tuple[list[int], Callable[[], None]]]:
        """Start *stack*'s worker processes, wait until each has beaten and idled :data:`SETTLE_S`.

        Yields the pids and a check that raises if one has exited; stops them on exit.
        """
        # The workers' own logs go to a file beside the run, not into the report.
        log = (self.cwd / f"{stack.replace(':', '_')}-workers.log").open("ab")
        workers = [
            subprocess.Popen(
                self.worker_command(stack, threads), env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
            for _ in range(processes)
        ]

        def alive() -> None:
            if any(process.poll() is not None for process in workers):
                raise RuntimeError("a worker process exited during the run")

        def ready() -> bool:
            alive()
            return int(self.client.zcard(KEYS.heartbeats())) >= processes

        try:
            wait_until(ready, timeout_s=120, interval_s=0.05)
            time.sleep(SETTLE_S)
            yield [process.pid for process in workers], alive
        finally:
            for process in workers:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in workers:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            log.close()

    def idle(
        self,
        stack: str,
        processes: int,
        threads: int,
        seconds: float,
        *,
        pickups: int = 0,
        probe: Callable[[list[int]], Callable[[], Any]] | None = None,
    ) -> dict[str, Any]:
        """Idle workers: CPU and Redis commands per second per process over *seconds*, then pickups.

        Parameters:
          pickups: Messages sent one at a time after random pauses of 0 to 1 s; the
            time from just before the send until the actor starts is reported.
          probe: Started with the pids at the start of the idle period; what it
            returns is called at its end (a profiler), and its answer returned.
        """
        from bench import redis_calls

        self.reset()
        self.client.delete(KEYS.heartbeats())
        calls_dir = self.cwd / "redis-calls" / f"{stack.replace(':', '_')}-{time.time_ns()}"
        calls_dir.mkdir(parents=True)
        self.env[redis_calls.COUNT_FILE_ENV] = str(calls_dir)
        try:
            with self.workers(stack, processes, threads) as (pids, alive):
                return self._idle(stack, pids, alive, seconds, pickups, probe, calls_dir)
        finally:
            self.env.pop(redis_calls.COUNT_FILE_ENV, None)

    def _idle(
        self,
        stack: str,
        pids: list[int],
        alive: Callable[[], None],
        seconds: float,
        pickups: int,
        probe: Callable[[list[int]], Callable[[], Any]] | None,
        calls_dir: Path,
    ) -> dict[str, Any]:
        from bench import redis_calls

        processes = len(pids)
        stop_probe = probe(pids) if probe else None
        # The processes write their call counts every half second: the window's ends
        # are read as they were written (within half a second of the window's).
        calls_before = redis_calls.read(calls_dir)
        commands_before = self.commands()
        cpu_before = process_tree_cpu_s(pids)
        started = time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - started
        cpu = process_tree_cpu_s(pids) - cpu_before
        commands = commands_delta(commands_before, self.commands(), by_command=True)
        calls = redis_calls.read(calls_dir) - calls_before
        result: dict[str, Any] = {
            "redis_calls_per_s_per_process": calls / elapsed / processes,
            "cpu_ms_per_s_per_process": cpu / elapsed / processes * 1000,
            "redis_commands_per_s_per_process": sum(commands.values()) / elapsed / processes,
            "redis_commands": {name: count / elapsed / processes for name, count in commands.items()},
        }
        if stop_probe is not None:
            result["probe"] = stop_probe()
        if pickups:
            rng = random.Random(7)
            sender = self.sender(stack)
            latencies_ms = []
            for _ in range(pickups):
                time.sleep(rng.uniform(0.0, 1.0))
                alive()
                sent = time.time()
                sender()
                popped = self.client.blpop([STAMPS_KEY], timeout=10)
                if popped is None:
                    raise RuntimeError("a stamp message was not processed within 10 s")
                latencies_ms.append((float(popped[1]) - sent) * 1000)
            result["pickup_ms"] = latencies_ms
        return result


def commands_delta(before: dict[str, int], after: dict[str, int], *, by_command: bool = False) -> Any:
    """Commands Redis ran between two :meth:`Driver.commands` readings (all of them, or by command).

    ``INFO`` itself (the readings) is left out.
    """
    delta = {name: calls - before.get(name, 0) for name, calls in after.items() if name != "info"}
    delta = {name: calls for name, calls in delta.items() if calls}
    return delta if by_command else sum(delta.values())


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, interval_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not done within {timeout_s} s")
        time.sleep(interval_s)


def load_average() -> str:
    """The machine's 1-, 5- and 15-minute load averages (other work shares the cores)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def latency_line(name: str, latencies_ms: list[float]) -> str:
    return (
        f"  {name:<40} n={len(latencies_ms):<5} p50 {percentile(latencies_ms, 0.5):8.3f} ms   "
        f"p95 {percentile(latencies_ms, 0.95):8.3f} ms   p99 {percentile(latencies_ms, 0.99):8.3f} ms   "
        f"max {max(latencies_ms):8.3f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000, help="messages drained per run")
    parser.add_argument("--runs", type=int, default=5, help="drain runs per stack")
    parser.add_argument("--processes", type=int, default=2, help="worker processes per stack")
    parser.add_argument("--threads", type=int, default=8, help="worker threads per process")
    parser.add_argument("--stacks", default=",".join(DEFAULT_STACKS), help="comma-separated stacks")
    parser.add_argument("--pickups", type=int, default=50, help="idle pickups timed per stack (0: skip)")
    parser.add_argument("--publishes", type=int, default=5000, help="publish calls timed (0: skip)")
    parser.add_argument("--publish-rounds", type=int, default=5, help="publish calls are timed in this many rounds")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    options = parser.parse_args(argv)
    stacks = [s.strip() for s in options.stacks.split(",") if s.strip()]
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # stop embedded servers too

    with servers("throughput") as running:
        driver = Driver(running)
        print(header("Throughput: Nightshift's deployed worker vs bare Dramatiq"))
        print(
            f"  {options.messages} no-op messages per run, {options.runs} runs per stack, "
            f"{options.processes} process(es) x {options.threads} threads; load average {load_average()}"
        )
        raw: dict[str, Any] = {"drain": {s: [] for s in stacks}}
        for run in range(options.runs):
            order = stacks if run % 2 == 0 else stacks[::-1]
            for stack in order:
                result = driver.drain(stack, options.messages, options.processes, options.threads)
                raw["drain"][stack].append(result)
                lag = (
                    f", records in PostgreSQL {result['records_lag_s']:.2f} s later"
                    if "records_lag_s" in result
                    else ""
                )
                print(
                    f"  run {run + 1} {stack:<24} steady {result['steady_msgs_per_s']:6.0f} msgs/s, "
                    f"drain {result['msgs_per_s']:6.0f} msgs/s ({result['seconds']:.2f} s), "
                    f"worker CPU {result['worker_cpu_us_per_msg']:4.0f} us/msg, "
                    f"enqueue {result['enqueue_per_s']:5.0f} msgs/s{lag}; load average {load_average()}",
                    flush=True,
                )

        if options.runs:
            print("\nMedians (ratios to dramatiq from the same interleaved runs)")
            summary: dict[str, dict[str, float]] = {}
            for stack in stacks:
                runs = raw["drain"][stack]
                summary[stack] = {
                    key: median([r[key] for r in runs])
                    for key in ("steady_msgs_per_s", "msgs_per_s", "worker_cpu_us_per_msg", "enqueue_per_s")
                }
            base = summary.get("dramatiq")
            for stack, values in summary.items():
                ratios = (
                    f"  ratios: steady {values['steady_msgs_per_s'] / base['steady_msgs_per_s']:.2f}, "
                    f"drain {values['msgs_per_s'] / base['msgs_per_s']:.2f}, "
                    f"CPU/msg {values['worker_cpu_us_per_msg'] / base['worker_cpu_us_per_msg']:.2f}"
                    if base
                    else ""
                )
                print(
                    f"  {stack:<24} steady {values['steady_msgs_per_s']:6.0f} msgs/s   "
                    f"drain {values['msgs_per_s']:6.0f} msgs/s   "
                    f"worker CPU {values['worker_cpu_us_per_msg']:4.0f} us/msg   "
                    f"enqueue {values['enqueue_per_s']:5.0f} msgs/s{ratios}"
                )
            raw["medians"] = summary

        if options.pickups:
            print("\nIdle pickup latency (send -> actor starts)")
            for stack in stacks:
                latencies = driver.run_json("_pickup", stack, options.threads, options.pickups)["latencies_ms"]
                raw.setdefault("pickup", {})[stack] = latencies
                print(latency_line(stack, latencies))

        if options.publishes:
            print("\nPublish latency (one call, caller's view)")
            # In rounds, alternating stacks, so that a burst of load from elsewhere
            # on the machine lands on every stack alike.
            publish: dict[str, list[float]] = {stack: [] for stack in stacks}
            rounds = max(1, options.publish_rounds)
            for round_ in range(rounds):
                for stack in stacks if round_ % 2 == 0 else stacks[::-1]:
                    answer = driver.run_json("_publish", stack, options.publishes // rounds)
                    publish[stack].extend(answer["latencies_ms"])
            for stack, latencies in publish.items():
                label = "dramatiq: bare send()" if stack.startswith("dramatiq") else f"{stack}: publish()"
                print(latency_line(label, latencies))
            raw["publish"] = publish

        if options.json:
            options.json.parent.mkdir(parents=True, exist_ok=True)
            options.json.write_text(json.dumps(raw, indent=1))
        driver.engine.dispose()
    return 0


def dispatch(argv: list[str]) -> int:
    """Run a subprocess role (``_enqueue``, ``_serve``, ``_pickup``, ``_publish``) or the driver."""
    roles: dict[str, Callable[..., None]] = {
        "_enqueue": lambda stack, n, task_ms="0": role_enqueue(stack, int(n), float(task_ms)),
        "_serve": lambda stack, threads: role_serve(stack, int(threads)),
        "_pickup": lambda stack, threads, n: role_pickup(stack, int(threads), int(n)),
        "_publish": lambda stack, n, synchronized="": role_publish(stack, int(n), bool(synchronized)),
        "_publish_many": lambda stack, n, batch: role_publish_many(stack, int(n), int(batch)),
    }
    if argv and argv[0] in roles:
        roles[argv[0]](*argv[1:])
        return 0
    return main(argv)


if __name__ == "__main__":
    sys.exit(dispatch(sys.argv[1:]))
