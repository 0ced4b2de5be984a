"""A bench-only service: production's worker, one no-op actor.

The throughput benchmark runs this spec through :func:`run_worker`, the entry
point ``nightshift run <service>`` calls in production: every lane's queue and
delay queue, the health server, the outbox relay, liveness, and job records in
PostgreSQL, with production's middleware stack and settings. Only the actor is
the benchmark's: it takes no arguments and does nothing, so what is measured is
the machinery around it.
"""

from __future__ import annotations

from nightshift.common.contracts import Contract, Payload
from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

#: The service's name (and queue prefix).
NAME = "bench"


class Nothing(Payload):
    """No arguments."""


#: The no-op actor's contract; its messages go to ``bench_normal``.
NOOP = Contract(NAME, "bench_noop", Lane.NORMAL, Nothing)

#: The service as a worker runs it: every lane, production's thread profile.
SERVICE = ServiceSpec(name=NAME, lanes=tuple(Lane), actors_module="bench.noop_actors", threads=8, health_port=0)
