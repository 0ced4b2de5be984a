"""Provider rate limits enforced across every worker, with Dramatiq's Redis-backed limiters.

A provider allows so many requests per second and so many at once. Both are
counted in Redis (Dramatiq's ``WindowRateLimiter`` and ``ConcurrentRateLimiter``
on a ``RedisBackend``), so the limit holds however many workers send. A call over
the limit raises :class:`RateLimited`, a :class:`Deferred`: the message goes back
to its queue, due a moment later, and does not use one of its retries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis
from dramatiq.rate_limits import ConcurrentRateLimiter, WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from nightshift.common.errors import RateLimited

#: Prefix of the limiters' Redis keys.
KEY_PREFIX = "ratelimit:"
#: How long a concurrency slot lives if its worker dies holding it.
SLOT_TTL_MS = 60_000
#: Extra wait, at most, added to a deferred call so waiting messages spread out.
JITTER_MS = 250


class ProviderRateLimit:
    """The rate and concurrency limits of one provider.

    Parameters:
      client: The application Redis.
      provider: The provider's name (``sendgrid``, ``fcm``…), part of the keys.
      per_second: Requests allowed per second (None: no rate limit).
      concurrency: Requests allowed at once (None: no concurrency limit).
      concurrency_wait_ms: Delay of a call refused for concurrency (a slot frees within a call's time).

    Raises:
      ValueError: A limit is not positive.
    """

    def __init__(
        self,
        client: redis.Redis[bytes],
        provider: str,
        *,
        per_second: int | None = None,
        concurrency: int | None = None,
        concurrency_wait_ms: int = 200,
    ) -> None:
        if (per_second is not None and per_second < 1) or (concurrency is not None and concurrency < 1):
            raise ValueError(f"rate limits of {provider!r} must be positive")
        backend = RedisBackend(client=client)
        self.provider = provider
        self.per_second = per_second
        self.concurrency = concurrency
        self.concurrency_wait_ms = concurrency_wait_ms
        self._window = (
            WindowRateLimiter(backend, f"{KEY_PREFIX}{provider}:rate", limit=per_second, window=1)  # type: ignore[no-untyped-call]
            if per_second
            else None
        )
        self._slots = (
            ConcurrentRateLimiter(backend, f"{KEY_PREFIX}{provider}:slots", limit=concurrency, ttl=SLOT_TTL_MS)  # type: ignore[no-untyped-call]
            if concurrency
            else None
        )

    @contextmanager
    def acquire(self) -> Iterator[None]:
        """Hold one request's place in the limits for the duration of the block.

        Raises:
          RateLimited: Over the limit now; its delay says when to come back.
        """
        with ExitStack() as stack:
            if self._window is not None:
                allowed = stack.enter_context(self._window.acquire(raise_on_failure=False))
                if not allowed:
                    wait = 1000 - int(time.time() * 1000) % 1000
                    raise RateLimited(
                        f"{self.provider}: over {self.per_second} requests per second",
                        delay_ms=wait + random.randint(0, JITTER_MS),
                    )
            if self._slots is not None:
                allowed = stack.enter_context(self._slots.acquire(raise_on_failure=False))
                if not allowed:
                    raise RateLimited(
                        f"{self.provider}: {self.concurrency} requests already under way",
                        delay_ms=self.concurrency_wait_ms + random.randint(0, JITTER_MS),
                    )
            yield
