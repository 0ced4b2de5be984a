"""A bench-only service: production's worker, no-op and timing actors.

The throughput benchmark runs this spec through :func:`run_worker`, the entry
point ``nightshift run <service>`` calls in production: every lane's queue and
delay queue, the health server, the outbox relay, liveness, and job records in
PostgreSQL, with production's middleware stack and settings. Only the actors
are the benchmark's: one does nothing, so what is measured is the machinery
around it; one stamps the time it starts; one sleeps (an I/O-bound task).
"""

from __future__ import annotations

from nightshift.common.contracts import Contract, Payload
from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

#: The service's name (and queue prefix).
NAME = "bench"

#: The list the stamping actor pushes its start times to (``time.time()``), in the broker's Redis.
STAMPS_KEY = "bench:stamps"


class Nothing(Payload):
    """No arguments."""


class Nap(Payload):
    """How long to sleep, in milliseconds."""

    ms: float


#: The no-op actor's contract; its messages go to ``bench_normal``.
NOOP = Contract(NAME, "bench_noop", Lane.NORMAL, Nothing)

#: Pushes the time it starts to :data:`STAMPS_KEY`; normal lane.
STAMP = Contract(NAME, "bench_stamp", Lane.NORMAL, Nothing)

#: The same on the high lane (the high-behind-low benchmark).
HIGH_STAMP = Contract(NAME, "bench_high_stamp", Lane.HIGH, Nothing)

#: Sleeps (an I/O-bound task); normal lane.
NAP = Contract(NAME, "bench_nap", Lane.NORMAL, Nap)

#: The same on the low lane (the backlog of the high-behind-low benchmark).
LOW_NAP = Contract(NAME, "bench_low_nap", Lane.LOW, Nap)

#: Runs ``gc.collect()`` and pushes how long it took (ms) to :data:`GC_KEY`; normal lane.
FULL_GC = Contract(NAME, "bench_full_gc", Lane.NORMAL, Nothing)

#: Where :data:`FULL_GC` reports.
GC_KEY = "bench:gc"

#: The service as a worker runs it: every lane, production's thread profile.
SERVICE = ServiceSpec(name=NAME, lanes=tuple(Lane), actors_module="bench.noop_actors", threads=8, health_port=0)
