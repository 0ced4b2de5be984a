"""Fire claims: the lease check, a fire's claim and its enqueue are one step in Redis.

Each fire has a deterministic message id (schedule name + scheduled time), the
same in every process. The active scheduler enqueues a fire with one Lua script
that, atomically:

1. refuses unless the lease key still holds this scheduler's ``owner|token``, so
   a leader that was paused (GC, SIGSTOP, a stopped VM) or cut off past its lease
   is fenced off, whatever message it had built before;
2. does nothing if the fire's claim key exists (the fire is already enqueued);
3. sets the claim key to ``enqueued`` for as long as the fire could be considered
   again (:meth:`FireClaims.enqueue`'s *keep*);
4. selects the broker's database and writes the message there exactly as
   :meth:`NightshiftRedisBroker.do_enqueue <nightshift.common.redis_broker.NightshiftRedisBroker.do_enqueue>`
   does: the ``<queue>.msgs`` hash, the queue list and the queue's wake list.

No process can stop between these steps, so there is no "claimed but not pushed"
nor "pushed but not marked" state for a pause or a crash to leave behind. The
lease and the claims stay in the application database (see ``docs/scheduler.md``
for why); Redis keeps a script's ``SELECT`` local to the script, so the caller's
connection keeps its database.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import dramatiq
import redis

from nightshift.common.redis_broker import WAKE_TOKENS, NightshiftRedisBroker
from nightshift.scheduler.lease import LeaderLease

#: Key prefix of the fire claims.
CLAIM_PREFIX = "nightshift:scheduler:fire:"

#: Value of the claim of a fire whose message is in the queue.
ENQUEUED = b"enqueued"

#: How long a queue's wake list lives without an enqueue (as the broker's enqueue sets it).
WAKE_LIST_TTL_MS = 60_000

_FENCED_ENQUEUE = """
-- KEYS: lease, fire claim (application database);
--       queue list, queue messages hash, queue wake list (broker database)
-- ARGV: lease value of the caller (owner|token), broker database, claim ttl ms,
--       redis message id, message data, wake tokens kept, wake list ttl ms
if redis.call("get", KEYS[1]) ~= ARGV[1] then return -2 end
local claim = redis.call("get", KEYS[2])
if claim == "enqueued" then return 0 end
-- Any other value is the claim of a scheduler from before this script (a rolling
-- upgrade), which lapses within a lease TTL.
if claim then return -1 end
redis.call("set", KEYS[2], "enqueued", "PX", ARGV[3])
redis.call("select", ARGV[2])
redis.call("hset", KEYS[4], ARGV[4], ARGV[5])
redis.call("rpush", KEYS[3], ARGV[4])
redis.call("rpush", KEYS[5], "1")
redis.call("ltrim", KEYS[5], -tonumber(ARGV[6]), -1)
redis.call("pexpire", KEYS[5], ARGV[7])
return 1
"""


class Claim(enum.Enum):
    """What :meth:`FireClaims.enqueue` did."""

    #: The message is in the queue now, and the fire is marked enqueued.
    ENQUEUED = 1
    #: The fire was already enqueued (by this or another scheduler): nothing written.
    DONE = 0
    #: An older scheduler's claim holds the fire right now: nothing written, try again later.
    PENDING = -1
    #: The lease no longer holds the caller's token: nothing written, the caller must stand down.
    FENCED = -2


def _server(client: redis.Redis[bytes]) -> tuple[object, ...]:
    """Where *client* connects (host and port, or socket path), its database aside."""
    kwargs = client.connection_pool.connection_kwargs
    return kwargs.get("host"), kwargs.get("port"), kwargs.get("path")


class FireClaims:
    """Fires enqueued once each, fenced by the lease.

    Parameters:
      client: Redis, on the application database (where the lease and the claims are).
      broker: The broker the fires go to; its database must be on the same Redis server.

    Raises:
      ValueError: When the broker's Redis is another server than *client*'s.
    """

    def __init__(self, client: redis.Redis[bytes], broker: NightshiftRedisBroker) -> None:
        if _server(client) != _server(broker.client):
            raise ValueError(
                f"the scheduler's Redis {_server(client)} and the broker's {_server(broker.client)} "
                "must be one server (one script writes the claim and the message)"
            )
        self.client = client
        self.broker = broker
        self.broker_db = int(broker.client.connection_pool.connection_kwargs.get("db") or 0)
        self._enqueue = client.register_script(_FENCED_ENQUEUE)

    def enqueue(self, message: dramatiq.Message[Any], *, lease: LeaderLease, token: int, keep: dt.timedelta) -> Claim:
        """Enqueue *message*, a fire, if *lease* still holds *token* and nobody enqueued the fire yet.

        The broker's enqueue middleware runs around it as around ``broker.enqueue``; the
        after-hooks (the job record's ``queued`` event) only when the message was written.

        Parameters:
          message: The fire's message; its id names the claim.
          lease: This scheduler's lease.
          token: The fencing token the caller believes it holds.
          keep: How long the fire stays marked enqueued (as long as it could be fired again).
        """
        # Each enqueue has its own id in Redis, as the broker's enqueue gives it.
        message = message.copy(options={"redis_message_id": str(uuid.uuid4())})
        self.broker.emit_before("enqueue", message, None)
        queue = self.broker.key(message.queue_name)
        outcome = Claim(
            int(
                self._enqueue(
                    keys=[lease.key, CLAIM_PREFIX + message.message_id, queue, f"{queue}.msgs", f"{queue}.wake"],
                    args=[
                        lease.held_as(token),
                        self.broker_db,
                        int(keep.total_seconds() * 1000),
                        message.options["redis_message_id"],
                        message.encode(),
                        WAKE_TOKENS,
                        WAKE_LIST_TTL_MS,
                    ],
                )
            )
        )
        if outcome is Claim.ENQUEUED:
            self.broker.emit_after("enqueue", message, None)
        return outcome

    def enqueued(self, message_ids: list[str]) -> set[str]:
        """Those of *message_ids* whose fire is already enqueued."""
        if not message_ids:
            return set()
        states = self.client.mget([CLAIM_PREFIX + message_id for message_id in message_ids])
        return {message_id for message_id, state in zip(message_ids, states, strict=True) if state == ENQUEUED}
