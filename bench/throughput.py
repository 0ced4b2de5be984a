"""Throughput and latency of a Nightshift worker against bare Dramatiq, on the same Redis.

Three measurements, each in fresh subprocesses so no state leaks between stacks:

* **drain throughput** — for each run and each stack (alternating), *N* no-op
  messages are enqueued first, then a worker process starts (same processes and
  threads for every stack) and the clock runs from the moment it is told to go
  until the queue and its ack sets are empty (``LLEN`` and ``HLEN <q>.msgs`` at
  0, polled every few milliseconds — the actor itself does nothing). The
  worker process's CPU time per message is reported beside it: on a shared
  machine it is steadier than wall time and shows what each stack costs. For
  Nightshift, the time until every job record and audit row is in PostgreSQL
  is reported too (the records are written in batches behind the hot path);
* **idle pickup** — an idle worker, one message at a time after a random pause:
  the time from just before the send until the actor starts (the actor stores
  ``time.time()`` in Redis);
* **publish latency** — ``nightshift.common.events.publish("user.registered", …)``
  call by call, next to a bare Dramatiq ``send()``.

Stacks: ``nightshift`` is ``build_broker(settings)``, the full middleware list
(job records, tracing, metrics, retries, dead-letter reasons, liveness); ``dramatiq``
is ``RedisBroker(url=…)`` with Dramatiq's default middleware. For profiling,
``nightshift-without-A+B`` drops the middleware classes named A and B,
``nightshift-broker`` is Nightshift's broker with Dramatiq's default middleware, and a
``:otlp`` suffix traces with the OpenTelemetry SDK, spans encoded as OTLP and
discarded (without it, as in a deployment with no ``OTEL_EXPORTER_OTLP_ENDPOINT``,
the tracing middleware runs against OpenTelemetry's no-op tracer).

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, text

from bench._common import ROOT, WORKDIR, Servers, header, median, percentile, servers
from nightshift.common.db.engine import make_engine

#: The queue every benchmark message goes to.
QUEUE = "bench_normal"

#: Control lists, on the broker's Redis database, outside Dramatiq's namespace.
READY_KEY = "bench:ready"
GO_KEY = "bench:go"
STOP_KEY = "bench:stop"
STAMPS_KEY = "bench:stamps"
CPU_KEY = "bench:cpu"

#: How often the drained condition is polled.
POLL_INTERVAL_S = 0.005

#: The stacks compared by default.
DEFAULT_STACKS = ("nightshift", "dramatiq")


# --- the stacks -----------------------------------------------------------------------


def make_broker(stack: str) -> dramatiq.Broker:
    """Build *stack*'s broker from the environment and make it Dramatiq's global broker.

    Raises:
      ValueError: For an unknown stack name.
    """
    from nightshift.common import broker as nightshift_broker
    from nightshift.common.encoder import install_encoder
    from nightshift.common.redis_broker import NightshiftRedisBroker
    from nightshift.common.runtime import settings

    stack, _, feature = stack.partition(":")
    if feature == "otlp":
        install_discarding_otlp()
    elif feature:
        raise ValueError(f"unknown feature {feature!r}: only :otlp is known")
    if stack == "dramatiq":
        broker = RedisBroker(url=settings().broker_url)  # type: ignore[no-untyped-call]
        dramatiq.set_broker(broker)
        return broker
    if stack == "nightshift-broker":
        # Nightshift's consumer with Dramatiq's own middleware: the broker's share alone.
        from dramatiq.middleware import default_middleware

        install_encoder()
        broker = NightshiftRedisBroker(url=settings().broker_url, middleware=[m() for m in default_middleware])
        dramatiq.set_broker(broker)
        return broker
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


def close_broker(broker: dramatiq.Broker) -> None:
    writer = getattr(broker, "record_writer", None)
    if writer is not None:
        writer.close()
    broker.close()


# --- subprocess roles -----------------------------------------------------------------


def role_enqueue(stack: str, messages: int) -> None:
    """Enqueue *messages* no-op messages through *stack*'s broker (records included)."""
    broker = make_broker(stack)
    control = control_client()
    noop = declare_actors(broker, control)["noop"]
    started = time.perf_counter()
    for _ in range(messages):
        noop.send()
    elapsed = time.perf_counter() - started
    close_broker(broker)
    print(json.dumps({"enqueue_per_s": messages / elapsed}))


def role_worker(stack: str, threads: int) -> None:
    """Get ready, wait for the go, consume until told to stop."""
    broker = make_broker(stack)
    control = control_client()
    declare_actors(broker, control)
    control.rpush(READY_KEY, os.getpid())
    if control.blpop([GO_KEY], timeout=120) is None:
        raise SystemExit("no go signal within 120 s")
    cpu_at_go = time.process_time()
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=threads)
    worker.start()
    control.blpop([STOP_KEY], timeout=900)
    # CPU of every thread of the process (consumer, workers, records writer, liveness).
    control.rpush(CPU_KEY, repr(time.process_time() - cpu_at_go))
    worker.stop(timeout=10_000)
    close_broker(broker)


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
    close_broker(broker)
    print(json.dumps({"latencies_ms": latencies_ms}))


def role_publish(stack: str, count: int) -> None:
    """Time *count* publications of ``user.registered`` (or bare sends for ``dramatiq``)."""
    broker = make_broker(stack)
    if stack.startswith("dramatiq"):
        control = control_client()
        noop = declare_actors(broker, control)["noop"]

        def call(user_id: int) -> None:
            noop.send(user_id)
    else:
        from nightshift.common.events import publish

        def call(user_id: int) -> None:
            publish("user.registered", {"user_id": user_id})

    for user_id in range(1, 201):  # warm-up: imports, script loading, connections
        call(user_id)
    latencies_ms = []
    for user_id in range(1000, 1000 + count):
        started = time.perf_counter_ns()
        call(user_id)
        latencies_ms.append((time.perf_counter_ns() - started) / 1e6)
    close_broker(broker)
    print(json.dumps({"latencies_ms": latencies_ms}))


# --- the driver -----------------------------------------------------------------------


class Driver:
    """Runs the subprocesses and watches Redis and PostgreSQL from outside."""

    def __init__(self, servers: Servers) -> None:
        from nightshift.common.settings import with_redis_db

        self.env = servers.env()
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")]))
        self.broker_url = with_redis_db(servers.redis_url, 1)
        self.env["BENCH_BROKER_URL"] = self.broker_url
        self.client = control_client(self.broker_url)
        self.engine: Engine = make_engine(servers.database_url, pool_size=1)
        self.cwd = WORKDIR / "throughput" / "cwd"
        self.cwd.mkdir(parents=True, exist_ok=True)

    def command(self, role: str, *args: object) -> list[str]:
        return [sys.executable, "-m", "bench.throughput", role, *(str(a) for a in args)]

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

    def queue_empty(self) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(f"dramatiq:{QUEUE}")
        pipe.hlen(f"dramatiq:{QUEUE}.msgs")
        ready, outstanding = pipe.execute()
        return bool(ready == 0 and outstanding == 0)

    def audit_rows(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM task_audit")).scalar_one())

    def drain(self, stack: str, messages: int, processes: int, threads: int) -> dict[str, float]:
        """One drain run: enqueue, start the workers, time until the queue is empty."""
        self.reset()
        enqueued = self.run_json("_enqueue", stack, messages)
        queued = int(self.client.llen(f"dramatiq:{QUEUE}"))
        if queued != messages:
            raise RuntimeError(f"expected {messages} queued messages, found {queued}")
        workers = [
            subprocess.Popen(self.command("_worker", stack, threads), env=self.env, cwd=self.cwd)
            for _ in range(processes)
        ]
        try:
            for _ in range(processes):
                if self.client.blpop([READY_KEY], timeout=120) is None:
                    raise RuntimeError("a worker did not get ready within 120 s")
            started = time.perf_counter()
            self.client.rpush(GO_KEY, *["go"] * processes)

            def drained() -> bool:
                if any(process.poll() is not None for process in workers):
                    raise RuntimeError("a worker process exited before the queue was drained")
                return self.queue_empty()

            wait_until(drained, timeout_s=600, interval_s=POLL_INTERVAL_S)
            finished = time.perf_counter()
            result = {
                "msgs_per_s": messages / (finished - started),
                "seconds": finished - started,
                "enqueue_per_s": enqueued["enqueue_per_s"],
            }
            if stack.startswith("nightshift") and "JobRecords" not in stack and stack != "nightshift-broker":
                wait_until(lambda: self.audit_rows() >= messages, timeout_s=120, interval_s=0.02)
                result["records_lag_s"] = time.perf_counter() - finished
        finally:
            self.client.rpush(STOP_KEY, *["stop"] * processes)
            for process in workers:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        cpu_seconds = sum(float(value) for value in self.client.lrange(CPU_KEY, 0, -1))
        result["worker_cpu_us_per_msg"] = cpu_seconds / messages * 1e6
        return result


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, interval_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not done within {timeout_s} s")
        time.sleep(interval_s)


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
    parser.add_argument("--processes", type=int, default=1, help="worker processes per stack")
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
        print(header("Throughput: Nightshift vs bare Dramatiq"))
        print(
            f"  {options.messages} no-op messages per run, {options.runs} runs per stack, "
            f"{options.processes} process(es) x {options.threads} threads"
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
                    f"  run {run + 1} {stack:<32} {result['msgs_per_s']:9.0f} msgs/s, "
                    f"worker CPU {result['worker_cpu_us_per_msg']:4.0f} us/msg ({result['seconds']:.2f} s{lag})"
                )

        if options.runs:
            medians = {s: median([r["msgs_per_s"] for r in raw["drain"][s]]) for s in stacks}
            print("\nMedian drain throughput")
            baseline = medians.get("dramatiq")
            for stack, value in medians.items():
                ratio = f"  ratio to dramatiq {value / baseline:.2f}" if baseline else ""
                enqueue = median([r["enqueue_per_s"] for r in raw["drain"][stack]])
                cpu = median([r["worker_cpu_us_per_msg"] for r in raw["drain"][stack]])
                print(
                    f"  {stack:<32} {value:9.0f} msgs/s{ratio}   worker CPU {cpu:.0f} us/msg   "
                    f"(enqueue {enqueue:.0f} msgs/s)"
                )
            raw["medians"] = medians

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
    """Run a subprocess role (``_enqueue``, ``_worker``, ``_pickup``, ``_publish``) or the driver."""
    roles: dict[str, Callable[..., None]] = {
        "_enqueue": lambda stack, n: role_enqueue(stack, int(n)),
        "_worker": lambda stack, threads: role_worker(stack, int(threads)),
        "_pickup": lambda stack, threads, n: role_pickup(stack, int(threads), int(n)),
        "_publish": lambda stack, n: role_publish(stack, int(n)),
    }
    if argv and argv[0] in roles:
        roles[argv[0]](*argv[1:])
        return 0
    return main(argv)


if __name__ == "__main__":
    sys.exit(dispatch(sys.argv[1:]))
