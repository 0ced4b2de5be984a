"""Bare Dramatiq for the throughput benchmark: ``dramatiq bench.bare_dramatiq``.

Dramatiq's own ``RedisBroker`` with its default middleware, on the broker URL
the benchmark gives (``BENCH_BROKER_URL``), and a no-op actor on the same queue
name as the Nightshift side's. Run by Dramatiq's own command line, as a bare
Dramatiq deployment runs.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.noop_service import NOOP

broker = RedisBroker(url=os.environ["BENCH_BROKER_URL"])  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=NOOP.queue_name, actor_name=NOOP.actor_name)
def bench_noop() -> None:
    """Does nothing: the benchmark measures the machinery around it."""
