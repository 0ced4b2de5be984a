"""Does the ops alert evaluator, or ``purge_expired_data``, slow the workers down?

The drain of :mod:`bench.throughput` (Nightshift's deployed worker, job records and audit
rows in PostgreSQL), run alternately *quiet* and *loaded*. Loaded, a background process
evaluates every alert rule every 0.5 s (sixty times the default interval) and runs
``purge_expired_data`` in a loop, against 200,000 expired audit rows and 100,000 expired
job records seeded before each run, so the purge deletes from the very tables the workers
are writing while they write. Reported: steady and drain rates per run and their medians.

Run it with ``python -m bench.alerts_overhead`` (``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import text

from bench._common import header, median, servers
from bench.throughput import QUEUE, Driver

#: Expired rows seeded before each run (400 days old: past every retention).
EXPIRED_AUDIT = 200_000
EXPIRED_RECORDS = 100_000


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

    def records(self) -> tuple[int, int]:
        with self.engine.connect() as connection:
            audit = connection.execute(text("SELECT count(*) FROM task_audit WHERE actor <> 'old'")).scalar_one()
            done = connection.execute(
                text("SELECT count(*) FROM job_records WHERE status = 'done' AND actor <> 'old'")
            ).scalar_one()
        return int(audit), int(done)


def role_background() -> None:
    """Evaluate the rules every 0.5 s and purge in a loop until killed."""
    import redis

    from nightshift.common import runtime
    from nightshift.common.broker import build_broker
    from nightshift.ops import maintenance
    from nightshift.ops.context import OpsContext
    from nightshift.ops.evaluator import evaluate
    from nightshift.ops.settings import OpsSettings

    settings = runtime.settings()
    options = OpsSettings(extra_queues=QUEUE, purge_batch_size=5000)
    broker = build_broker(settings, set_global=False)
    ctx = OpsContext.build(
        settings, options, runtime.session_factory(), broker, redis.Redis.from_url(settings.redis_url)
    )
    next_evaluation = 0.0
    while True:
        if time.monotonic() >= next_evaluation:
            evaluate(ctx)
            next_evaluation = time.monotonic() + 0.5
        maintenance.purge_expired_data(ctx.sessions, broker, ctx.queues, options)
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="messages drained per run")
    parser.add_argument("--runs", type=int, default=4, help="runs per mode")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args(argv)
    with servers("alerts_overhead") as running:
        driver = LoadedDriver(running)
        print(header("Throughput with the alert evaluator and purge_expired_data running"))
        results: dict[str, list[dict[str, Any]]] = {"quiet": [], "loaded": []}
        for run in range(options.runs):
            for mode in ("quiet", "loaded") if run % 2 == 0 else ("loaded", "quiet"):
                background = None
                if mode == "loaded":
                    background = subprocess.Popen(
                        [sys.executable, "-m", "bench.alerts_overhead", "_background"],
                        env=driver.env,
                        cwd=driver.cwd,
                        stdout=subprocess.DEVNULL,
                        stderr=(driver.cwd / "background.log").open("ab"),
                    )
                try:
                    result = driver.drain("nightshift", options.messages, options.processes, options.threads)
                finally:
                    if background is not None:
                        background.terminate()
                        background.wait(timeout=30)
                results[mode].append(result)
                print(
                    f"  run {run + 1} {mode:<7} steady {result['steady_msgs_per_s']:6.0f} msgs/s, "
                    f"drain {result['msgs_per_s']:6.0f} msgs/s, "
                    f"worker CPU {result['worker_cpu_us_per_msg']:4.0f} us/msg",
                    flush=True,
                )
        print("\nMedians")
        for mode, runs in results.items():
            print(
                f"  {mode:<7} steady {median([r['steady_msgs_per_s'] for r in runs]):6.0f} msgs/s   "
                f"drain {median([r['msgs_per_s'] for r in runs]):6.0f} msgs/s"
            )
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["_background"]:
        role_background()
    sys.exit(main(sys.argv[1:]))
