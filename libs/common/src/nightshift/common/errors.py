"""Nightshift's exception hierarchy.

Retries are decided by type: a :class:`PermanentError` goes to the dead letters
after one attempt; anything else is treated as transient and retried on the
schedule.
"""

from __future__ import annotations


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


class ProcessDied(PermanentError):
    """The worker process died (crash, memory or time limit) every time it ran this message."""


class TransientError(NightshiftError):
    """A dependency failed in a way that may succeed later; retried."""


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
