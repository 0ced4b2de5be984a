"""Does the ops alert evaluator, or ``purge_expired_data``, slow the workers down or make them wait?

The drain of :mod:`bench.throughput` (Nightshift's deployed worker, job records and audit
rows in PostgreSQL), run in interleaved pairs, *quiet* and *loaded* (ABBA order, so a drift
of the shared machine's load hits both modes alike). Loaded, a background process evaluates
every alert rule every 0.5 s (sixty times the default interval) and runs
``purge_expired_data`` back to back, against 200,000 expired audit rows and 100,000 expired
job records seeded before each run, so the purge deletes from the very tables the workers
are writing while they write. The background process is started before the run and waits
for the drain's go, so its start-up costs the workers nothing.

Measured directly, in both modes, during the drain only:

- **lock waits**: every 20 ms a separate connection samples ``pg_stat_activity``
  (backends whose ``wait_event_type`` is ``Lock``) and ``pg_locks`` (locks not granted);
- **the background's transactions**: each transaction of the evaluator and of the purge is
  timed in the background process (SQLAlchemy ``begin`` / ``commit`` / ``rollback``
  events), and the longest and the count are reported per run.

Reported: steady and drain rates per run, the medians per mode, the median of the per-pair
ratios loaded/quiet, lock-wait samples and the longest background transactions.

Run it with ``python -m bench.alerts_overhead`` (``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from bench._common import header, median, servers
from bench.throughput import QUEUE, Driver, control_client, process_tree_cpu_s

#: Expired rows seeded before each run (400 days old: past every retention).
EXPIRED_AUDIT = 200_000
EXPIRED_RECORDS = 100_000
#: The background process waits for this key (on the broker's Redis) before it starts.
BACKGROUND_GO_KEY = "bench:alerts-overhead-go"
#: The background's connections, told apart from the workers' in ``pg_stat_activity``.
BACKGROUND_APPLICATION = "nightshift-bench-ops"
#: How often the lock sampler looks at PostgreSQL.
SAMPLE_INTERVAL_S = 0.02

#: Who waits on whom, when someone waits: the waiter's and each blocker's connection and statement.
_BLOCKERS = text(
    """
    SELECT w.application_name, left(regexp_replace(w.query, '\\s+', ' ', 'g'), 70),
           b.application_name, left(regexp_replace(b.query, '\\s+', ' ', 'g'), 70)
    FROM pg_stat_activity w
    CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)
    JOIN pg_stat_activity b ON b.pid = blocker.pid
    WHERE w.datname = current_database() AND w.wait_event_type = 'Lock'
    """
)
_BACKGROUND_BACKENDS = text("SELECT pid FROM pg_stat_activity WHERE application_name = :background")

_LOCK_SAMPLE = text(
    """
    SELECT
      (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'),
      (SELECT count(*) FROM pg_locks WHERE NOT granted),
      (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0) FROM pg_stat_activity
        WHERE application_name = :background AND xact_start IS NOT NULL)
    """
)


class LoadedDriver(Driver):
    """The throughput driver, seeding expired rows at each reset and counting only the run's own."""

    def reset(self) -> None:
        super().reset()
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO task_audit (message_id, actor, queue, attempt, outcome, started_at, finished_at,"
                    " duration_ms) SELECT gen_random_uuid(), 'old', 'old', 1, 'done', :at, :at, 1"
                    " FROM generate_series(1, :n)"
                ),
                {"at": old, "n": EXPIRED_AUDIT},
            )
            connection.execute(
                text(
                    "INSERT INTO job_records (message_id, actor, queue, status, updated_at)"
                    " SELECT gen_random_uuid(), 'old', 'old', 'done', :at FROM generate_series(1, :n)"
                ),
                {"at": old, "n": EXPIRED_RECORDS},
            )
            connection.execute(text("ANALYZE task_audit, job_records"))

    def records(self) -> tuple[int, int]:
        with self.engine.connect() as connection:
            audit = connection.execute(text("SELECT count(*) FROM task_audit WHERE actor <> 'old'")).scalar_one()
            done = connection.execute(
                text("SELECT count(*) FROM job_records WHERE status = 'done' AND actor <> 'old'")
            ).scalar_one()
        return int(audit), int(done)


class LockSampler:
    """Samples lock waits and the background's open transactions from its own connection, in a thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stop_event = threading.Event()
        self.samples = 0
        self.waiting_samples = 0
        self.max_waiting = 0
        self.max_not_granted = 0
        self.max_background_xact_s = 0.0
        #: Samples in which a backend waited on a lock the background held.
        self.background_blocking_samples = 0
        #: (waiter, blocker) descriptions, counted over the samples.
        self.waits: Counter[str] = Counter()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LockSampler:
        self.thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self.stop_event.set()
        self.thread.join(timeout=10)
        return {
            "samples": self.samples,
            "lock_wait_samples": self.waiting_samples,
            "max_lock_waiters": self.max_waiting,
            "max_locks_not_granted": self.max_not_granted,
            "max_background_xact_ms_sampled": round(self.max_background_xact_s * 1000, 1),
            "background_blocking_samples": self.background_blocking_samples,
            "waits": dict(self.waits.most_common(5)),
        }

    def _run(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SET application_name = 'nightshift-bench-sampler'"))
            connection.commit()
            while not self.stop_event.is_set():
                waiting, not_granted, background_xact = connection.execute(
                    _LOCK_SAMPLE, {"background": BACKGROUND_APPLICATION}
                ).one()
                connection.commit()
                self.samples += 1
                self.waiting_samples += 1 if waiting else 0
                self.max_waiting = max(self.max_waiting, int(waiting))
                self.max_not_granted = max(self.max_not_granted, int(not_granted))
                self.max_background_xact_s = max(self.max_background_xact_s, float(background_xact))
                if waiting:
                    rows = connection.execute(_BLOCKERS).all()
                    connection.commit()
                    if any(blocker == BACKGROUND_APPLICATION for _, _, blocker, _ in rows):
                        self.background_blocking_samples += 1
                    for waiter, waiter_query, blocker, blocker_query in rows:
                        self.waits[f"{waiter}: {waiter_query} <- {blocker}: {blocker_query}"] += 1
                self.stop_event.wait(SAMPLE_INTERVAL_S)


class TransactionTimer:
    """Times every transaction of an engine, by the phase (``evaluate``, ``purge``) it ran in."""

    def __init__(self, engine: Engine) -> None:
        self.phase = "other"
        self.longest: dict[str, float] = {}
        self.count: dict[str, int] = {}
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def _begin(self, connection: Any) -> None:
        connection.info["bench_began"] = (time.perf_counter(), self.phase)

    def _end(self, connection: Any) -> None:
        began = connection.info.pop("bench_began", None)
        if began is None:
            return
        at, phase = began
        self.longest[phase] = max(self.longest.get(phase, 0.0), time.perf_counter() - at)
        self.count[phase] = self.count.get(phase, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            phase: {"transactions": self.count[phase], "longest_ms": round(self.longest[phase] * 1000, 1)}
            for phase in sorted(self.count)
        }


def role_background(result_path: str) -> None:
    """Wait for the go, then evaluate the rules every 0.5 s and purge in a loop until SIGTERM.

    On SIGTERM, writes what it did (evaluations, rows purged, its transactions) to *result_path*.
    """
    import redis

    from nightshift.common import runtime
    from nightshift.common.broker import build_broker
    from nightshift.common.db.engine import make_engine, make_session_factory
    from nightshift.ops import maintenance
    from nightshift.ops.context import OpsContext
    from nightshift.ops.evaluator import evaluate
    from nightshift.ops.settings import OpsSettings

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = runtime.settings()
    options = OpsSettings(extra_queues=QUEUE)
    engine = make_engine(settings.database_url, pool_size=2, application_name=BACKGROUND_APPLICATION)
    timer = TransactionTimer(engine)
    broker = build_broker(settings, set_global=False)
    ctx = OpsContext.build(
        settings, options, make_session_factory(engine), broker, redis.Redis.from_url(settings.redis_url)
    )
    go = control_client()
    while not stop.is_set() and go.blpop([BACKGROUND_GO_KEY], timeout=1) is None:
        pass
    evaluations = purges = purged = 0
    next_evaluation = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_evaluation:
            timer.phase = "evaluate"
            evaluate(ctx)
            evaluations += 1
            next_evaluation = time.monotonic() + 0.5
        timer.phase = "purge"
        purged += sum(maintenance.purge_expired_data(ctx.sessions, broker, ctx.queues, options).values())
        purges += 1
        timer.phase = "other"
        stop.wait(0.05)
    Path(result_path).write_text(
        json.dumps({"evaluations": evaluations, "purges": purges, "purged": purged, "transactions": timer.summary()})
    )


def run_once(driver: LoadedDriver, mode: str, options: argparse.Namespace) -> dict[str, Any]:
    """One drain in *mode* (``quiet`` or ``loaded``), with its lock samples and the background's figures."""
    background = None
    result_path = driver.cwd / "background.json"
    result_path.unlink(missing_ok=True)
    if mode == "loaded":
        background = subprocess.Popen(
            [sys.executable, "-m", "bench.alerts_overhead", "_background", str(result_path)],
            env=driver.env,
            cwd=driver.cwd,
            stdout=subprocess.DEVNULL,
            stderr=(driver.cwd / "background.log").open("ab"),
        )
    sampler = LockSampler(driver.engine)
    locks: dict[str, Any] = {}
    cpu: dict[str, float] = {}

    def background_pids() -> list[int]:
        """The background process and its PostgreSQL backends: what the maintenance costs in CPU."""
        if background is None:
            return []
        with driver.engine.connect() as connection:
            backends = connection.execute(_BACKGROUND_BACKENDS, {"background": BACKGROUND_APPLICATION}).scalars()
            return [background.pid, *backends]

    def on_go(pids: list[int]) -> Callable[[], None]:
        watched = background_pids()
        cpu_at_go, go = process_tree_cpu_s(watched), time.perf_counter()
        sampler.start()
        if background is not None:
            driver.client.rpush(BACKGROUND_GO_KEY, "1")

        def drained() -> None:  # the drain is over: stop sampling (the records are checked after)
            locks.update(sampler.stop())
            seconds = time.perf_counter() - go
            # Backends the background opened after the go count from zero: an upper bound.
            used = process_tree_cpu_s(sorted({*watched, *background_pids()})) - cpu_at_go
            cpu.update(background_cpu_s=used, background_cpu_share=used / (seconds * (os.cpu_count() or 1)))

        return drained

    try:
        result = driver.drain("nightshift", options.messages, options.processes, options.threads, on_go=on_go)
    finally:
        if background is not None:
            background.terminate()
            background.wait(timeout=120)
    result["locks"] = locks
    result.update(cpu)
    if background is not None:
        result["background"] = json.loads(result_path.read_text())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="messages drained per run")
    parser.add_argument("--pairs", type=int, default=6, help="quiet/loaded pairs (interleaved, ABBA)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args(argv)
    with servers("alerts_overhead") as running:
        driver = LoadedDriver(running)
        print(header("Throughput with the alert evaluator and purge_expired_data running"))
        pairs: list[dict[str, dict[str, Any]]] = []
        for pair in range(options.pairs):
            results: dict[str, dict[str, Any]] = {}
            for mode in ("quiet", "loaded") if pair % 2 == 0 else ("loaded", "quiet"):
                result = results[mode] = run_once(driver, mode, options)
                locks = result["locks"]
                line = (
                    f"  pair {pair + 1} {mode:<7} steady {result['steady_msgs_per_s']:6.0f} msgs/s, "
                    f"drain {result['msgs_per_s']:6.0f} msgs/s, "
                    f"worker CPU {result['worker_cpu_us_per_msg']:4.0f} us/msg;"
                    f" lock waits in {locks['lock_wait_samples']}/{locks['samples']} samples"
                    f" (max {locks['max_lock_waiters']} waiting, {locks['max_locks_not_granted']} not granted)"
                )
                if "background" in result:
                    background = result["background"]
                    transactions = ", ".join(
                        f"{phase} {figures['transactions']} tx longest {figures['longest_ms']:.0f} ms"
                        for phase, figures in background["transactions"].items()
                    )
                    line += (
                        f"; {background['evaluations']} evaluations, {background['purged']} rows purged"
                        f" ({transactions}; longest seen open {locks['max_background_xact_ms_sampled']:.0f} ms);"
                        f" blocked by the background in {locks['background_blocking_samples']} samples;"
                        f" background CPU {result['background_cpu_s']:.1f} s"
                        f" = {100 * result['background_cpu_share']:.0f} % of the machine during the drain"
                    )
                print(line, flush=True)
                for wait, count in locks["waits"].items():
                    print(f"      waited {count}x  {wait}", flush=True)
            pairs.append(results)
        print("\nMedians")
        for mode in ("quiet", "loaded"):
            runs = [results[mode] for results in pairs]
            print(
                f"  {mode:<7} steady {median([r['steady_msgs_per_s'] for r in runs]):6.0f} msgs/s   "
                f"drain {median([r['msgs_per_s'] for r in runs]):6.0f} msgs/s   "
                f"lock-wait samples {sum(r['locks']['lock_wait_samples'] for r in runs)}"
                f"/{sum(r['locks']['samples'] for r in runs)}"
            )
        loaded = [results["loaded"] for results in pairs]
        blocked = sum(r["locks"]["background_blocking_samples"] for r in loaded)
        print(
            f"  loaded: background CPU share median {100 * median([r['background_cpu_share'] for r in loaded]):.0f} %,"
            f" samples with a backend blocked by the background {blocked},"
            f" longest background transaction"
            f" {max(f['longest_ms'] for r in loaded for f in r['background']['transactions'].values()):.0f} ms"
        )
        for measure in ("steady_msgs_per_s", "msgs_per_s"):
            ratios = sorted(results["loaded"][measure] / results["quiet"][measure] for results in pairs)
            print(
                f"  loaded/quiet {measure}: median of pair ratios {median(ratios):.3f}"
                f" (range {ratios[0]:.3f}-{ratios[-1]:.3f})"
            )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_background"]:
        role_background(sys.argv[2])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
