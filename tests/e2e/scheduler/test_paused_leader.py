"""Three scheduler processes, one-second schedules, the active one paused around fire boundaries.

An operator's way to find a double fire: stop the active scheduler (SIGSTOP) a few
milliseconds before or after a fire, for longer than its lease, let a standby take
over and fire, then resume it (SIGCONT). Whatever it held when it stopped — a
message built but not pushed, a message pushed but not recorded — each scheduled
second must still be on the queue exactly once.
"""

from __future__ import annotations

import datetime as dt
import math
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.processes import wait_for
from nightshift.common.settings import CommonSettings
from tests.support.scheduled_messages import by_schedule, queue_length, scheduled_messages
from tests.support.scheduler_processes import lease_holder_pid, scheduler_processes, status
from tests.support.scheduler_schedules import TICK

pytestmark = pytest.mark.e2e

SECOND = dt.timedelta(seconds=1)

#: The schedulers' lease: short, so a pause outlasts it quickly and the test stays fast.
LEASE_TTL_MS = 800

#: Where each pause starts, in milliseconds from a fire boundary (a whole second):
#: spread over -50…+50 ms, denser just after the boundary, where a fire is in flight.
OFFSETS_MS = (-50, -20, -5, 0, 1, 2, 4, 8, 20, 50)


def _next_boundary(margin_s: float = 0.2) -> float:
    """The next whole second of the wall clock at least *margin_s* away."""
    return float(math.ceil(time.time() + margin_s))


def _pause_leader_around_a_fire(
    app: redis.Redis[bytes],
    processes: dict[int, tuple[Popen[bytes], int]],
    offset_ms: int,
    latest_fire: Callable[[], dt.datetime | None],
) -> tuple[dt.datetime, int, int]:
    """SIGSTOP the active scheduler *offset_ms* from the next fire boundary, until a successor fired past it.

    Returns:
      The boundary, the paused leader's pid and its successor's.
    """
    leader = wait_for(lambda: lease_holder_pid(app), what="an active scheduler")
    process, port = processes[leader]
    boundary = _next_boundary()
    at = dt.datetime.fromtimestamp(boundary, dt.UTC)
    time.sleep(max(0.0, boundary + offset_ms / 1000 - time.time()))
    process.send_signal(signal.SIGSTOP)
    try:
        successor = wait_for(
            lambda: (pid := lease_holder_pid(app)) not in (None, leader) and pid,
            timeout=15,
            what=f"a successor while the leader is paused ({offset_ms:+d} ms)",
        )
        # Paused until the successor has handled the boundary's fire and the next one:
        # whatever the paused leader held for that fire has had every chance to lapse.
        wait_for(lambda: (latest := latest_fire()) and latest >= at + SECOND, timeout=30, what="the successor's fires")
    finally:
        process.send_signal(signal.SIGCONT)
    # Resumed, it finishes what it was doing (refused: its lease is gone) and stands by.
    wait_for(lambda: (s := status(port)) and s["role"] == "standby", what="the resumed leader standing by")
    return at, leader, successor


def test_a_leader_paused_at_any_instant_around_a_fire_never_gets_it_enqueued_twice(
    env: CommonSettings, redis_client: redis.Redis[bytes], clean_db: Engine, tmp_path: Path
) -> None:
    app = redis.Redis.from_url(env.redis_url)

    def latest_catch_up() -> dt.datetime | None:
        fires = by_schedule(scheduled_messages(redis_client, TICK.queue_name)).get("ticks.catch_up", [])
        return fires[-1].scheduled_for if fires else None

    pauses = []
    with scheduler_processes(3, tmp_path, env={"SCHEDULER_LEASE_TTL_MS": str(LEASE_TTL_MS)}) as processes:
        wait_for(latest_catch_up, timeout=60, what="a first fire")
        for offset_ms in OFFSETS_MS:
            pauses.append(_pause_leader_around_a_fire(app, processes, offset_ms, latest_catch_up))
        last = pauses[-1][0]
        wait_for(lambda: (latest := latest_catch_up()) and latest >= last + 2 * SECOND, what="the last fires")

    messages = scheduled_messages(redis_client, TICK.queue_name)

    # Every pause handed the lease to another process.
    assert all(leader != successor for _, leader, successor in pauses)
    # Exactly one message per schedule and fired second, never one id twice, no stray queue entry.
    per_fire = Counter((m.schedule, m.scheduled_for) for m in messages)
    assert {fire: n for fire, n in per_fire.items() if n > 1} == {}
    assert len({m.message_id for m in messages}) == len(messages)
    assert queue_length(redis_client, TICK.queue_name) == len(messages)
    # The catch_up schedule fired every second, through every pause.
    catch_up = [m.scheduled_for for m in by_schedule(messages)["ticks.catch_up"]]
    assert catch_up == [catch_up[0] + n * SECOND for n in range(len(catch_up))]
    assert catch_up[0] < pauses[0][0] and catch_up[-1] > last
