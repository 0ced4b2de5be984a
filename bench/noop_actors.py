"""The bench service's actors, declared the way every service declares its actors."""

from __future__ import annotations

import gc
import os
import time

import redis

from bench.noop_service import FULL_GC, GC_KEY, HIGH_STAMP, LOW_NAP, NAP, NOOP, STAMP, STAMPS_KEY, Nap, Nothing
from nightshift.common.contracts import contract_actor

#: Where the stamps go: the benchmark's broker database.
_stamps = redis.Redis.from_url(os.environ.get("BENCH_BROKER_URL", "redis://localhost:6379/1"))


@contract_actor(NOOP)
def bench_noop(payload: Nothing) -> None:
    """Does nothing: the benchmark measures the machinery around it."""


@contract_actor(STAMP)
def bench_stamp(payload: Nothing) -> None:
    """Record when it started."""
    _stamps.rpush(STAMPS_KEY, repr(time.time()))


@contract_actor(HIGH_STAMP)
def bench_high_stamp(payload: Nothing) -> None:
    """Record when it started (high lane)."""
    _stamps.rpush(STAMPS_KEY, repr(time.time()))


@contract_actor(NAP)
def bench_nap(payload: Nap) -> None:
    """Sleep: an I/O-bound task."""
    time.sleep(payload.ms / 1000)


@contract_actor(LOW_NAP)
def bench_low_nap(payload: Nap) -> None:
    """Sleep (low lane)."""
    time.sleep(payload.ms / 1000)


@contract_actor(FULL_GC)
def bench_full_gc(payload: Nothing) -> None:
    """Run a full collection and report how long it took."""
    started = time.perf_counter()
    gc.collect()
    _stamps.rpush(GC_KEY, repr((time.perf_counter() - started) * 1000))
