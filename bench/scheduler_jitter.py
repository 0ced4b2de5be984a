"""Scheduler fire jitter (scheduled time → enqueued) and failover time.

Starts three real scheduler processes (``python -m nightshift.scheduler``) on
embedded Redis and PostgreSQL with ``--schedules`` every-second schedules
declared below (``SCHEDULER_EXTRA_SCHEDULES=bench.scheduler_jitter``), default
settings otherwise (lease TTL 5 s), and measures:

* jitter: for each fire, its job record's ``enqueued_at`` (stamped after the
  message is in Redis) minus its scheduled time, over at least ``--fires`` fires
  in steady state — p50, p99, max;
* failover, ``--kills`` times: the active process is SIGKILLed; time until a
  standby holds the lease and until the next fire is enqueued, and the longest
  gap between consecutive messages of a schedule;
* duplicates: fires enqueued more than once (must be 0).

Run it with ``python -m bench.scheduler_jitter``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import redis
from sqlalchemy import select

from bench._common import ROOT, WORKDIR, header, percentile, servers
from nightshift.common.contracts import Contract, Payload
from nightshift.common.db.engine import make_engine
from nightshift.common.db.models import JobRecord
from nightshift.common.lanes import Lane
from nightshift.common.processes import stop_processes, wait_for
from nightshift.common.redis_keys import RedisKeys
from nightshift.common.schedules import Schedule
from nightshift.common.settings import with_redis_db
from nightshift.scheduler.lease import LEASE_KEY


class Beat(Payload):
    n: int


#: A contract no worker implements: fires stay in Redis to be counted.
BEAT = Contract("jitter", "beat", Lane.NORMAL, Beat)

#: How many every-second schedules the scheduler processes load.
SCHEDULE_COUNT = int(os.environ.get("BENCH_SCHEDULES", "10"))

SCHEDULES = tuple(
    Schedule(f"jitter.s{n:02d}", "* * * * * *", BEAT, {"n": n}, timezone="UTC") for n in range(SCHEDULE_COUNT)
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, default=300, help="Steady-state fires to measure (at least).")
    parser.add_argument("--schedules", type=int, default=10, help="Every-second schedules.")
    parser.add_argument("--kills", type=int, default=3, help="Failovers to measure.")
    args = parser.parse_args()

    with servers("scheduler_jitter") as found, ExitStack() as stack:
        app = redis.Redis.from_url(found.redis_url)
        app.flushall()
        env = found.env()
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            SCHEDULER_EXTRA_SCHEDULES="bench.scheduler_jitter",
            SCHEDULER_HEALTH_PORT="0",
            BENCH_SCHEDULES=str(args.schedules),
        )
        broker = redis.Redis.from_url(with_redis_db(found.redis_url, 1))
        logs = WORKDIR / "scheduler_jitter" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        processes: dict[int, subprocess.Popen[bytes]] = {}

        def start() -> None:
            log = stack.enter_context(open(logs / f"scheduler-{len(processes)}.log", "wb"))
            process = subprocess.Popen([sys.executable, "-m", "nightshift.scheduler"], env=env, stdout=log, stderr=log)
            processes[process.pid] = process
            stack.callback(_stop, process)

        for _ in range(3):
            start()
        # Steady state: from the first fire, until enough fires are in.
        wait_for(lambda: _count(broker) >= 1, timeout=60, interval=0.01, what="the first fire")
        steady_from = dt.datetime.now(dt.UTC)
        wait_for(
            lambda: _count(broker, after=steady_from) >= args.fires + 2 * args.schedules,
            timeout=600,
            interval=0.01,
            what=f"{args.fires} fires in steady state",
        )
        steady_until = dt.datetime.now(dt.UTC)

        failovers = [_fail_over(app, broker, processes, start, args.schedules) for _ in range(args.kills)]
        for process in processes.values():
            _stop(process)

        messages = _messages(broker)
        engine = make_engine(found.database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                select(JobRecord.message_id, JobRecord.enqueued_at).where(JobRecord.actor == BEAT.actor_name)
            ).all()
        enqueued = {message_id: at for message_id, at in rows if at is not None}
        engine.dispose()

    per_fire = Counter((m.schedule, m.scheduled_for) for m in messages)
    steady = [m for m in messages if steady_from <= m.scheduled_for <= steady_until]
    jitter_ms = [
        (enqueued[m.message_id] - m.scheduled_for).total_seconds() * 1000 for m in steady if m.message_id in enqueued
    ]
    # The first fire of each second: the loop's own lateness, without the other schedules' enqueues.
    first_of_tick: dict[dt.datetime, float] = {}
    for m in steady:
        if m.message_id in enqueued:
            lateness = (enqueued[m.message_id] - m.scheduled_for).total_seconds() * 1000
            first_of_tick[m.scheduled_for] = min(lateness, first_of_tick.get(m.scheduled_for, lateness))
    by_schedule: dict[str, list[dt.datetime]] = defaultdict(list)
    for m in messages:
        by_schedule[m.schedule].append(m.scheduled_for)
    print(header("Scheduler fire jitter and failover"))
    print(f"  {args.schedules} every-second schedules, 3 scheduler processes, default settings (lease TTL 5 s)")
    print(f"  fires measured (steady state): {len(jitter_ms)}; duplicates: {sum(c - 1 for c in per_fire.values())}")
    print(
        f"  jitter scheduled -> enqueued: p50 {percentile(jitter_ms, 0.5):.1f} ms, "
        f"p99 {percentile(jitter_ms, 0.99):.1f} ms, max {max(jitter_ms):.1f} ms"
    )
    firsts = list(first_of_tick.values())
    print(
        f"  first fire of each second ({len(firsts)}): p50 {percentile(firsts, 0.5):.1f} ms, "
        f"p99 {percentile(firsts, 0.99):.1f} ms"
    )
    for killed_at, took_lease in failovers:
        after = sorted(
            enqueued[m.message_id] for m in messages if m.message_id in enqueued and enqueued[m.message_id] > killed_at
        )
        first_fire = (after[0] - killed_at).total_seconds() if after else float("nan")
        gaps = [
            (b - a).total_seconds()
            for times in by_schedule.values()
            for a, b in zip(sorted(times), sorted(times)[1:], strict=False)
            if a >= killed_at - dt.timedelta(seconds=2) and b <= killed_at + dt.timedelta(seconds=12)
        ]
        print(
            f"  SIGKILL of the active: standby took the lease after {took_lease:.2f} s, "
            f"next fire enqueued after {first_fire:.2f} s, longest gap between messages {max(gaps):.0f} s"
        )
    return 0


def _fail_over(
    app: redis.Redis[bytes],
    broker: redis.Redis[bytes],
    processes: dict[int, subprocess.Popen[bytes]],
    start: Callable[[], None],
    schedules: int,
) -> tuple[dt.datetime, float]:
    """SIGKILL the active scheduler; return when, and how long until a standby held the lease."""
    victim = _holder(app)
    if victim is None:
        raise SystemExit("no active scheduler")
    processes[victim].send_signal(signal.SIGKILL)
    processes[victim].wait()
    killed = time.monotonic()
    killed_at = dt.datetime.now(dt.UTC)
    wait_for(lambda: _holder(app) not in (None, victim), timeout=30, interval=0.01, what="a standby to take the lease")
    took_lease = time.monotonic() - killed
    start()  # keep three
    # Let the new active run a while, so its job records are written before the next kill.
    wait_for(
        lambda: _count(broker, after=killed_at + dt.timedelta(seconds=took_lease + 3)) >= 3 * schedules,
        timeout=60,
        interval=0.01,
        what="the new active scheduler's fires",
    )
    return killed_at, took_lease


@dataclass(frozen=True)
class Fire:
    message_id: uuid.UUID
    schedule: str
    scheduled_for: dt.datetime
    #: When the scheduler built the message, just before enqueuing it (ms resolution).
    created_at: dt.datetime


def _messages(client: redis.Redis[bytes]) -> list[Fire]:
    """Every fire waiting in the benchmark's queue."""
    found = []
    for body in client.hvals(RedisKeys().messages(BEAT.queue_name)):
        data = json.loads(body)
        found.append(
            Fire(
                message_id=uuid.UUID(data["message_id"]),
                schedule=data["options"]["trigger"],
                scheduled_for=dt.datetime.fromisoformat(data["options"]["scheduled_for"]),
                created_at=dt.datetime.fromtimestamp(data["message_timestamp"] / 1000, dt.UTC),
            )
        )
    return found


def _count(client: redis.Redis[bytes], after: dt.datetime | None = None) -> int:
    if after is None:
        return int(client.hlen(RedisKeys().messages(BEAT.queue_name)))
    return sum(1 for m in _messages(client) if m.scheduled_for >= after)


def _holder(client: redis.Redis[bytes]) -> int | None:
    value = client.get(LEASE_KEY)
    return None if value is None else int(value.decode().rpartition("|")[0].split(":")[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_processes([process], grace_s=20)


if __name__ == "__main__":
    sys.exit(main())
