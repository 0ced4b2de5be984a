"""How many messages one Redis can carry: its CPU per message under the deployed worker.

Runs ``bench.throughput``'s drain (enqueue through the stack's broker, then the
deployed worker fetching and acking) against a Redis started here, and reads that
``redis-server``'s own CPU time (``/proc/<pid>/stat``) before and after. Redis runs
commands on one thread, so one second of its CPU divided by the CPU per message is
the ceiling of one Redis (one shard) in messages per second, whatever the number of
workers::

    python -m bench.redis_ceiling --messages 20000 --runs 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench._common import WORKDIR, header
from nightshift.common.local.embedded import EmbeddedRedis

#: Clock ticks per second of ``/proc/<pid>/stat``'s CPU fields.
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process *pid*."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per drain run")
    parser.add_argument("--runs", type=int, default=2, help="drain runs (of the nightshift stack)")
    options = parser.parse_args(argv)

    redis = EmbeddedRedis(WORKDIR / "redis_ceiling" / "redis").start()
    assert redis.process is not None
    try:
        env = {**os.environ, "BENCH_REDIS_URL": redis.url}
        command = [sys.executable, "-m", "bench.throughput", "--stacks", "nightshift", "--pickups", "0"]
        command += ["--publishes", "0", "--runs", str(options.runs), "--messages", str(options.messages)]
        before, started = cpu_seconds(redis.process.pid), time.monotonic()
        subprocess.run(command, env=env, check=True)
        redis_cpu, wall = cpu_seconds(redis.process.pid) - before, time.monotonic() - started
    finally:
        redis.process.terminate()
        redis.process.wait(timeout=10)

    messages = options.messages * options.runs
    per_message_us = redis_cpu / messages * 1e6
    print(header("One Redis's ceiling: its CPU per message (enqueue, fetch, ack, heartbeats)"))
    print(f"  {messages} messages in {wall:.1f} s of bench (start-ups included); redis-server CPU {redis_cpu:.2f} s")
    ceiling = 1e6 / per_message_us
    print(f"  Redis CPU per message: {per_message_us:.1f} us -> ceiling of one Redis core: {ceiling:,.0f} msgs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
