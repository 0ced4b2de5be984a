"""Leader election: a Redis lease with renewal and a fencing token.

One process of many is active (the scheduler, the ops alert evaluator); the
others stand by and take over when it stops renewing. The lease is one key
holding ``owner|token``. Taking a free lease increments a counter, so every
term has a larger token than the last; a holder may write its token with what it
changes in PostgreSQL, so that a write carrying an older token is refused. A
holder counts itself active only until its last successful renewal plus the TTL
(minus a margin), measured on its own monotonic clock from *before* the renewal
was sent, so it stands down before Redis lets anyone else in.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Self

import redis

logger = logging.getLogger(__name__)

#: Share of the TTL a holder stops short of, for clock drift between it and Redis.
SAFETY_MARGIN = 0.2

_ACQUIRE_OR_RENEW = """
-- KEYS: lease, fence counter; ARGV: owner, ttl ms
local current = redis.call("get", KEYS[1])
if current then
    local owner, token = string.match(current, "^(.*)|(%d+)$")
    if owner == ARGV[1] then
        redis.call("pexpire", KEYS[1], ARGV[2])
        return tonumber(token)
    end
    return -1
end
local token = redis.call("incr", KEYS[2])
redis.call("set", KEYS[1], ARGV[1] .. "|" .. token, "PX", ARGV[2])
return token
"""

_RELEASE = """
-- KEYS: lease; ARGV: owner
local current = redis.call("get", KEYS[1])
if current and string.match(current, "^(.*)|%d+$") == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Holder:
    """Who holds the lease and under which token."""

    owner: str
    token: int


def default_owner() -> str:
    """``host:pid:random``: unique per process, readable in ``/status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaderLease:
    """Keeps trying to hold the lease; renews it while held.

    Parameters:
      client: Redis (the application database, not the broker's).
      ttl_ms: Lease lifetime without renewal; renewed every third of it.
      owner: This process's identity.
      key: The lease key; fence: the fencing counter (tests give other names to stage a split brain).
      role: What holding it makes this process, for the logs (``scheduler``, ``alert evaluator``).
    """

    def __init__(
        self,
        client: redis.Redis[bytes],
        *,
        ttl_ms: int,
        key: str,
        fence: str,
        owner: str | None = None,
        role: str = "leader",
    ) -> None:
        self.client = client
        self.role = role
        self.key = key
        self.fence = fence
        self.ttl_ms = ttl_ms
        self.owner = owner or default_owner()
        self.interval_s = ttl_ms / 3000
        self._acquire = client.register_script(_ACQUIRE_OR_RENEW)
        self._release = client.register_script(_RELEASE)
        self._token: int | None = None
        self._valid_until = 0.0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nightshift-lease", daemon=True)

    def token(self) -> int | None:
        """This process's fencing token while it holds a valid lease, else None."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._valid_until:
                return self._token
            return None

    def held_as(self, token: int) -> str:
        """The lease key's value while this process holds the lease under *token*."""
        return f"{self.owner}|{token}"

    def attempt(self) -> int | None:
        """Take or renew the lease once; return the token if held."""
        sent = time.monotonic()
        try:
            result = int(self._acquire(keys=[self.key, self.fence], args=[self.owner, self.ttl_ms]))
        except redis.RedisError as error:
            logger.warning("Could not reach Redis for the %s lease: %s", self.role, error)
            return self.token()
        with self._lock:
            if result < 0:
                if self._token is not None:
                    logger.warning("Lost the %s lease (token %d).", self.role, self._token)
                self._token = None
                return None
            if self._token != result:
                logger.info("Became the active %s (fencing token %d).", self.role, result)
            self._token = result
            self._valid_until = sent + self.ttl_ms * (1 - SAFETY_MARGIN) / 1000
            return result

    def abandon(self) -> None:
        """Stop counting as active at once (a newer token was seen in PostgreSQL)."""
        with self._lock:
            self._token = None

    def holder(self) -> Holder | None:
        """Whoever holds the lease now, as Redis sees it."""
        value = self.client.get(self.key)
        if value is None:
            return None
        owner, _, token = value.decode().rpartition("|")
        return Holder(owner=owner, token=int(token))

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing and hand the lease over at once (a standby takes it on its next try)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 2)
        self.abandon()
        try:
            self._release(keys=[self.key], args=[self.owner])
        except redis.RedisError:
            logger.warning("Could not release the %s lease; it expires in %d ms.", self.role, self.ttl_ms)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.attempt()
            self._stopped.wait(self.interval_s)
