"""Fire claims: at most one enqueue per scheduled time, even with two active schedulers.

Each fire has a deterministic message id (schedule name + scheduled time). Before
enqueuing, a scheduler claims the fire's key with ``SET NX``; after enqueuing it
marks the key ``enqueued`` for the rest of its TTL. A claim that was never
marked (its holder died between claim and enqueue) expires after the lease TTL,
and the next active scheduler then fires it.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import redis

#: Namespace of the fires' message ids: uuid5(namespace, "name@iso-time").
FIRE_NAMESPACE = uuid.UUID("6f1c3a52-2d0e-4c55-9a53-6a8d1d5f0c11")

#: Key prefix of the fire claims.
CLAIM_PREFIX = "nightshift:scheduler:fire:"

#: Marker of a fire whose message is in the queue.
ENQUEUED = b"enqueued"

_CLAIM = """
-- KEYS: claim; ARGV: claimant, claim ttl ms
local state = redis.call("get", KEYS[1])
if not state then
    redis.call("set", KEYS[1], "claimed:" .. ARGV[1], "PX", ARGV[2])
    return 1
end
if state == "enqueued" then return 0 end
if state == "claimed:" .. ARGV[1] then return 1 end
return -1
"""


class Claim(enum.Enum):
    """The answer to a claim."""

    #: Yours: enqueue, then :meth:`FireClaims.mark_enqueued`.
    GRANTED = 1
    #: Already enqueued by someone: nothing to do.
    DONE = 0
    #: Another scheduler holds it right now: try again later.
    PENDING = -1


def fire_message_id(schedule: str, scheduled_for: dt.datetime) -> str:
    """The message id of *schedule*'s fire at *scheduled_for*: the same in every process."""
    moment = scheduled_for.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return str(uuid.uuid5(FIRE_NAMESPACE, f"{schedule}@{moment}"))


class FireClaims:
    """Claims on fires, kept in Redis (the application database).

    Parameters:
      client: Redis.
      claim_ttl_ms: How long an unconfirmed claim blocks others (the lease TTL).
    """

    def __init__(self, client: redis.Redis[bytes], *, claim_ttl_ms: int) -> None:
        self.client = client
        self.claim_ttl_ms = claim_ttl_ms
        self._claim = client.register_script(_CLAIM)

    def claim(self, message_id: str, claimant: str) -> Claim:
        return Claim(int(self._claim(keys=[CLAIM_PREFIX + message_id], args=[claimant, self.claim_ttl_ms])))

    def mark_enqueued(self, message_id: str, keep: dt.timedelta) -> None:
        """Record that the fire's message is queued; the key lives for *keep*."""
        self.client.set(CLAIM_PREFIX + message_id, ENQUEUED, px=int(keep.total_seconds() * 1000))

    def enqueued(self, message_ids: list[str]) -> set[str]:
        """Those of *message_ids* whose fire is already enqueued."""
        if not message_ids:
            return set()
        states = self.client.mget([CLAIM_PREFIX + message_id for message_id in message_ids])
        return {message_id for message_id, state in zip(message_ids, states, strict=True) if state == ENQUEUED}
