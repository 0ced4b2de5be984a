"""Garbage-collection pauses of a deployed worker, and a high-lane message's wait behind a low-lane backlog.

One worker process (8 threads), started as :mod:`bench.throughput` starts it
(``run_worker`` on :mod:`bench.noop_service`), with a ``gc.callbacks`` hook
installed before start-up that times every collection of the oldest
generation. For each run:

1. a backlog of 5,000 low-lane tasks of 5 ms each is enqueued at once;
2. while it drains, a high-lane message that stamps the time it starts is sent
   every 20 ms: its *start latency* is the stamp minus the time just before
   the send;
3. then one message runs ``gc.collect()`` in the worker and reports how long
   that full collection took (the pause any full collection costs now).

Reported: the high-lane start latency (p50, p99, max), the longest full
collection the worker ran by itself during the run (after start-up), and the explicit full
collection's duration. ``--code PATH`` runs another checkout's
``nightshift.common`` (the "before").

Run it with ``python -m bench.gc_pause`` (``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import header, median, percentile, servers
from bench.noop_service import FULL_GC, GC_KEY, HIGH_STAMP, LOW_NAP, STAMPS_KEY
from bench.throughput import KEYS, Driver, load_average, wait_until

#: Where the serving process writes its collections' pauses (set by the driver).
GC_LOG_ENV = "BENCH_GC_LOG"


def install_gc_timer() -> None:
    """Time every full (generation 2) collection of this process; write them out at exit.

    Installed by the bench's serve role when :data:`GC_LOG_ENV` is set.
    """
    path = os.environ.get(GC_LOG_ENV)
    if not path:
        return
    pauses_ms: list[tuple[float, float]] = []  # (when it ended, time.time(); how long, ms)
    started: list[float] = []

    def timer(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses_ms.append((time.time(), (time.perf_counter() - started.pop()) * 1000))

    gc.callbacks.append(timer)
    import atexit

    atexit.register(lambda: Path(path).write_text(json.dumps({"pauses_ms": pauses_ms})))


def one_run(driver: Driver, backlog: int, task_ms: float, interval_s: float, log: Path) -> dict[str, Any]:
    driver.reset()
    driver.client.delete(KEYS.heartbeats())
    log.unlink(missing_ok=True)
    driver.env[GC_LOG_ENV] = str(log)
    try:
        with driver.workers("nightshift", 1, 8) as (_, alive):
            low = driver.sender("nightshift", LOW_NAP.actor_name, queue=LOW_NAP.queue_name, ms=task_ms)
            high = driver.sender("nightshift", HIGH_STAMP.actor_name, queue=HIGH_STAMP.queue_name)
            full_gc = driver.sender("nightshift", FULL_GC.actor_name, queue=FULL_GC.queue_name)
            go = time.time()  # the worker is up and idle: collections from here on count
            for _ in range(backlog):
                low()
            latencies_ms = []
            while driver.client.llen(KEYS.queue(LOW_NAP.queue_name)) > 0:
                alive()
                sent = time.time()
                high()
                popped = driver.client.blpop([STAMPS_KEY], timeout=10)
                if popped is None:
                    raise RuntimeError("a high-lane message was not processed within 10 s")
                latencies_ms.append((float(popped[1]) - sent) * 1000)
                time.sleep(interval_s)
            wait_until(lambda: driver.backlog() == (0, 0), timeout_s=120, interval_s=0.05)
            full_gc()
            popped = driver.client.blpop([GC_KEY], timeout=30)
            if popped is None:
                raise RuntimeError("the full collection message was not processed")
            explicit_ms = float(popped[1])
    finally:
        driver.env.pop(GC_LOG_ENV, None)
    pauses = [ms for at, ms in json.loads(log.read_text())["pauses_ms"] if at >= go] if log.exists() else []
    return {
        "high_latency_ms": latencies_ms,
        "auto_full_gc_ms": pauses,
        "explicit_full_gc_ms": explicit_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=5000, help="low-lane tasks in the backlog")
    parser.add_argument("--task-ms", type=float, default=5.0, help="each low-lane task sleeps this long")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="between high-lane messages")
    parser.add_argument("--code", type=Path, help="run this checkout's nightshift.common instead")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    options = parser.parse_args(argv)
    with servers("gc_pause") as running:
        driver = Driver(running, code=options.code)
        print(header("GC pauses and high-lane latency behind a low-lane backlog (1 process x 8 threads)"))
        print(f"  load average {load_average()}; code {options.code or 'this checkout'}")
        runs = []
        for run in range(options.runs):
            result = one_run(
                driver, options.backlog, options.task_ms, options.interval_ms / 1000, driver.cwd / "gc.json"
            )
            runs.append(result)
            lat = result["high_latency_ms"]
            print(
                f"  run {run + 1}: high-lane start p50 {percentile(lat, 0.5):.1f} ms, "
                f"p99 {percentile(lat, 0.99):.1f} ms, max {max(lat):.1f} ms (n={len(lat)}); automatic full collections "
                f"{len(result['auto_full_gc_ms'])}, longest {max(result['auto_full_gc_ms'], default=0):.1f} ms; "
                f"explicit gc.collect() {result['explicit_full_gc_ms']:.1f} ms; load average {load_average()}",
                flush=True,
            )
        all_latencies = [x for r in runs for x in r["high_latency_ms"]]
        summary = {
            "high_p50_ms": percentile(all_latencies, 0.5),
            "high_p99_ms": percentile(all_latencies, 0.99),
            "high_max_ms": max(all_latencies),
            "worst_auto_full_gc_ms": max((p for r in runs for p in r["auto_full_gc_ms"]), default=0.0),
            "explicit_full_gc_ms": median([r["explicit_full_gc_ms"] for r in runs]),
            "explicit_full_gc_worst_ms": max(r["explicit_full_gc_ms"] for r in runs),
        }
        print(
            f"\n  all runs: high-lane start p50 {summary['high_p50_ms']:.1f} ms, p99 {summary['high_p99_ms']:.1f} ms; "
            f"worst automatic full collection {summary['worst_auto_full_gc_ms']:.1f} ms; "
            f"explicit full collection median {summary['explicit_full_gc_ms']:.1f} ms, "
            f"worst {summary['explicit_full_gc_worst_ms']:.1f} ms"
        )
        if options.json:
            options.json.parent.mkdir(parents=True, exist_ok=True)
            options.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))
        driver.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
