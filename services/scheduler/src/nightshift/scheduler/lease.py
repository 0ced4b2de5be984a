"""The scheduler's lease: the generic :class:`~nightshift.common.lease.LeaderLease` on its own keys.

The active scheduler writes its fencing token with everything it changes in
PostgreSQL, and a write carrying an older token is refused (``claims.py``).
"""

from __future__ import annotations

import redis

from nightshift.common.lease import Holder, default_owner
from nightshift.common.lease import LeaderLease as _LeaderLease

__all__ = ["FENCE_KEY", "LEASE_KEY", "Holder", "LeaderLease", "default_owner"]

#: The lease key and the fencing counter.
LEASE_KEY = "nightshift:scheduler:leader"
FENCE_KEY = "nightshift:scheduler:fence"


class LeaderLease(_LeaderLease):
    """The scheduler's lease (see :class:`nightshift.common.lease.LeaderLease` for the parameters)."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        *,
        ttl_ms: int,
        owner: str | None = None,
        key: str = LEASE_KEY,
        fence: str = FENCE_KEY,
    ) -> None:
        super().__init__(client, ttl_ms=ttl_ms, owner=owner, key=key, fence=fence, role="scheduler")
