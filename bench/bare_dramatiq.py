"""Bare Dramatiq for the throughput benchmark: ``dramatiq bench.bare_dramatiq``.

Dramatiq's own ``RedisBroker`` with its default middleware, on the broker URL
the benchmark gives (``BENCH_BROKER_URL``), and the bench service's actors
(no-op, stamp, nap) on the same queue and actor names as the Nightshift side's.
Run by Dramatiq's own command line, as a bare Dramatiq deployment runs.
"""

from __future__ import annotations

import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench import redis_calls
from bench.noop_service import NAP, NOOP, STAMP, STAMPS_KEY

redis_calls.install()
broker = RedisBroker(url=os.environ["BENCH_BROKER_URL"])  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
_stamps = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])


@dramatiq.actor(queue_name=NOOP.queue_name, actor_name=NOOP.actor_name)
def bench_noop() -> None:
    """Does nothing: the benchmark measures the machinery around it."""


@dramatiq.actor(queue_name=STAMP.queue_name, actor_name=STAMP.actor_name)
def bench_stamp() -> None:
    """Record when it started."""
    _stamps.rpush(STAMPS_KEY, repr(time.time()))


@dramatiq.actor(queue_name=NAP.queue_name, actor_name=NAP.actor_name)
def bench_nap(ms: float) -> None:
    """Sleep: an I/O-bound task."""
    time.sleep(ms / 1000)
