"""Scenario 8: a million-message backlog drained by the workers, with flat worker memory.

The messages are enqueued straight through the broker's enqueue script in
pipelines (as a burst of publishers would leave them); Redis memory per queued
message is measured, then two workers drain the queue while their resident
memory is sampled. Each message sets one bit, so a message run twice or never
is seen. ``CHAOS_BACKLOG`` changes the size (1,000,000 in the long form).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from dramatiq import Message

from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import WAKE_TOKENS, NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.common.signing import MessageSigner
from tests.chaos.harness import LONG, Report, Workers
from tests.support.chaos_service import BACKLOG_BITS, BACKLOG_TWICE

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(7200),
    pytest.mark.skipif(not LONG, reason="long form only: make chaos (CHAOS_LONG=1)"),
]

SIZE = int(os.environ.get("CHAOS_BACKLOG", "1000000"))
QUEUE = "chaossvc_high"
#: Worker memory may grow by this much from the first sample after warm-up to the last.
FLAT_MB = 64


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_million_message_backlog_drains_with_flat_worker_memory(
    env: CommonSettings, broker: NightshiftRedisBroker, tmp_path: Path
) -> None:
    app = redis.Redis.from_url(env.redis_url)
    app.delete(BACKLOG_BITS, BACKLOG_TWICE)
    broker.declare_queue(QUEUE)
    before = int(broker.client.info("memory")["used_memory"])
    keys = [broker.keys.queue(QUEUE), broker.keys.messages(QUEUE), broker.keys.wake(QUEUE)]
    # Enqueued past the broker's middleware for speed, so signed here as the broker would: workers refuse unsigned ones.
    signer = MessageSigner(env.signing_keys())
    started = time.monotonic()
    for first in range(0, SIZE, 10_000):
        with broker.client.pipeline(transaction=False) as pipe:
            for n in range(first, min(first + 10_000, SIZE)):
                message: Message[object] = Message(
                    queue_name=QUEUE, actor_name="chaossvc_mark", args=(n,), kwargs={}, options={}
                )
                signer.sign(message)
                body = message.encode()
                broker._enqueue_script(keys=keys, args=[message.message_id, body, WAKE_TOKENS], client=pipe)
            pipe.execute()
    enqueue_s = time.monotonic() - started
    per_message = (int(broker.client.info("memory")["used_memory"]) - before) / SIZE
    assert broker.client.llen(broker.keys.queue(QUEUE)) == SIZE

    workers = Workers("chaossvc", 2, tmp_path / "logs")
    samples: list[tuple[float, int, list[float]]] = []  # seconds, left, rss of each worker
    try:
        drain_start = time.monotonic()

        def left() -> int:
            return int(broker.client.llen(broker.keys.queue(QUEUE))) + int(
                broker.client.hlen(broker.keys.messages(QUEUE))
            )

        def drained() -> bool:
            remaining = left()
            samples.append((time.monotonic() - drain_start, remaining, [_rss_mb(p.pid) for p in workers.processes]))
            return remaining == 0

        wait_for(drained, timeout=6000, interval=5, what="the backlog drained")
        drain_s = time.monotonic() - drain_start
        assert workers.alive()
    finally:
        workers.stop()

    done = int(app.bitcount(BACKLOG_BITS))
    twice = int(app.get(BACKLOG_TWICE) or 0)
    warm = next(s for s in samples if s[1] <= SIZE * 0.9)
    growth = max(last - first for first, last in zip(warm[2], samples[-1][2], strict=True))
    peak = max(max(s[2]) for s in samples)
    trace = ", ".join(f"{t:.0f}s:{max(r):.0f}" for t, _, r in samples[:: max(1, len(samples) // 8)])
    Report(
        scenario=f"8 backlog of {SIZE:,} messages, 2 workers",
        published=SIZE,
        refused=0,
        applied_once=done - twice,
        applied_twice=twice,
        lost=SIZE - done,
        recover_s=drain_s,
        notes=f"Redis {per_message:.0f} B per queued message; enqueued in {enqueue_s:.0f} s; "
        f"drained at {SIZE / drain_s:,.0f}/s; worker RSS peak {peak:.0f} MB, growth after warm-up "
        f"{growth:+.0f} MB (s:MB {trace}); time = drain time",
    ).write()
    assert done == SIZE
    assert growth < FLAT_MB
