"""The bench service's actor, declared the way every service declares its actors."""

from __future__ import annotations

from bench.noop_service import NOOP, Nothing
from nightshift.common.contracts import contract_actor


@contract_actor(NOOP)
def bench_noop(payload: Nothing) -> None:
    """Does nothing: the benchmark measures the machinery around it."""
