"""Nightshift's exception hierarchy.

Retries are decided by type: a :class:`PermanentError` goes to the dead letters
after one attempt; anything else is treated as transient and retried on the
schedule.
"""

from __future__ import annotations

from dramatiq.errors import RateLimitExceeded
from dramatiq.middleware import SkipMessage


class NightshiftError(Exception):
    """Base class of every error Nightshift raises on purpose."""


class ConfigurationError(NightshiftError):
    """A setting is missing or malformed."""


class PermanentError(NightshiftError):
    """Retrying cannot help: bad input, a missing row, a corrupt file."""


class InvalidPayload(PermanentError):
    """A message's arguments do not match the actor's contract."""


class NotFound(PermanentError):
    """The row a message refers to does not exist."""


class UndecodableMessage(PermanentError):
    """A message body could not be decoded into a Dramatiq message."""


class MessageRefused(PermanentError, SkipMessage):
    """A message whose signature does not hold: it never runs and goes to the dead letters.

    Also a :class:`~dramatiq.middleware.SkipMessage`, the one kind of error a
    ``before_process_message`` hook can raise that stops the actor from running
    (Dramatiq logs and swallows any other).
    """


class UnsignedMessage(MessageRefused):
    """The message carries no signature."""


class UnknownSigningKey(MessageRefused):
    """The message is signed with a key id this process does not know."""


class RetiredSigningKey(MessageRefused):
    """The message is signed with a key retired since."""


class TamperedMessage(MessageRefused):
    """The signature does not match the message: it was altered, or the signature is malformed."""


class SealedFieldError(PermanentError):
    """A sealed field cannot be opened: unknown or retired key, altered or malformed ciphertext."""


class ProcessDied(PermanentError):
    """The worker process died (crash, memory or time limit) every time it ran this message."""


class TransientError(NightshiftError):
    """A dependency failed in a way that may succeed later; retried."""


class Deferred(NightshiftError, RateLimitExceeded):
    """Not now: the message is put back, due in *delay_ms*, without using one of its retries.

    Raised when a dependency must not be called yet (an open circuit breaker, a
    provider's rate limit). ``ScheduledRetries`` re-enqueues the message with the
    delay and leaves its retry count alone; Dramatiq's worker logs it at debug level,
    as it does its own ``RateLimitExceeded``.

    Parameters:
      message: Why (names the breaker or the limit, never personal data).
      delay_ms: When to try again, in milliseconds from now.
    """

    def __init__(self, message: str, *, delay_ms: int) -> None:
        super().__init__(message)  # type: ignore[no-untyped-call]
        self.delay_ms = max(1, int(delay_ms))


class BreakerOpen(Deferred):
    """The dependency's circuit breaker is open (or a probe is already under way)."""


class RateLimited(Deferred):
    """The provider's rate or concurrency limit is reached for now."""


class RetryAfter(TransientError):
    """A dependency asked to be called again no sooner than *retry_after_ms* (HTTP ``Retry-After``).

    Retried on the schedule like any transient error, but never sooner than asked.
    """

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = max(0, int(retry_after_ms))


class EventError(NightshiftError):
    """An event was refused before anything was enqueued."""


class UnknownEvent(EventError):
    """The event name is not in the catalog."""


class InvalidEvent(EventError):
    """The payload does not match the event's schema."""


class UnknownJob(NightshiftError):
    """A job id that matches nothing where it was looked for.

    Parameters:
      job_id: The id asked for.
      queue: The queue it was looked for in (None: everywhere).
      where: What was searched, for the message ("dead letters", "queues").
    """

    def __init__(self, job_id: str, *, queue: str | None = None, where: str = "job records or queues") -> None:
        self.job_id = job_id
        self.queue = queue
        place = f"the {where} of queue {queue!r}" if queue else f"any of the {where}"
        super().__init__(f"no job with id {job_id!r} in {place}")


class JobForbidden(NightshiftError):
    """A job exists but belongs to a tenant the caller's token does not cover.

    Parameters:
      job_id: The id asked for.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} is outside this token's scope")
