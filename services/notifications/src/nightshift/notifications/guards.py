"""Every external call of the service goes through its provider's guard: breaker, then limits.

A guard is a :class:`CircuitBreaker` (shared by every worker through Redis) and a
:class:`ProviderRateLimit`. An open breaker or a reached limit raises a
``Deferred`` error: the message waits and keeps its retries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from nightshift.common import runtime
from nightshift.common.breakers import CircuitBreaker
from nightshift.common.rate_limits import ProviderRateLimit
from nightshift.notifications.mailers.base import Email, Mailer
from nightshift.notifications.settings import NotificationsSettings


@dataclass(frozen=True)
class ProviderGuard:
    """The breaker and limits of one provider."""

    breaker: CircuitBreaker
    limit: ProviderRateLimit

    @contextmanager
    def call(self) -> Iterator[None]:
        """One request to the provider.

        Raises:
          BreakerOpen: The provider's breaker is open (before anything is sent).
          RateLimited: The provider's limits are reached for now.
        """
        with self.breaker.guard(), self.limit.acquire():
            yield


def provider_guard(
    client: redis.Redis[bytes],
    settings: NotificationsSettings,
    provider: str,
    *,
    per_second: int | None = None,
    concurrency: int | None = None,
) -> ProviderGuard:
    """The guard of *provider* (``mail:sendgrid``, ``push:fcm``…) configured from *settings*."""
    return ProviderGuard(
        CircuitBreaker(
            client,
            provider,
            failure_threshold=settings.breaker_failures,
            open_ms=int(settings.breaker_open_s * 1000),
        ),
        ProviderRateLimit(client, provider, per_second=per_second, concurrency=concurrency),
    )


class GuardedMailer(Mailer):
    """A mailer whose every request goes through its provider's guard.

    Parameters:
      mailer: The backend doing the work.
      guard: Its provider's breaker and limits.
    """

    def __init__(self, mailer: Mailer, guard: ProviderGuard) -> None:
        super().__init__(sender=mailer.sender)
        self.mailer = mailer
        self.guard = guard
        self.backend = mailer.backend  # type: ignore[misc]
        self.batch_size = mailer.batch_size
        self.repeat_is_harmless = mailer.repeat_is_harmless  # type: ignore[misc]

    def send(self, email: Email) -> str | None:
        with self.guard.call():
            return self.mailer.send(email)

    def send_bulk(self, emails: Sequence[Email]) -> list[str | None]:
        with self.guard.call():
            return self.mailer.send_bulk(emails)


def mail_guard_for(mailer: Mailer, settings: NotificationsSettings) -> Mailer:
    """*mailer* behind its provider's guard; the local outbox needs none."""
    if mailer.backend == "outbox":
        return mailer
    per_second = settings.sendgrid_rps if mailer.backend == "sendgrid" else None
    concurrency = settings.sendgrid_concurrency if mailer.backend == "sendgrid" else None
    guard = provider_guard(
        runtime.app_redis(), settings, f"mail:{mailer.backend}", per_second=per_second, concurrency=concurrency
    )
    return GuardedMailer(mailer, guard)
