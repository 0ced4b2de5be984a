"""Why an email could not be sent, classified for the retry middleware.

Messages name the provider, the status and the error type, never an address or
a name: they end up in dead-letter reasons and job records.
"""

from __future__ import annotations

from nightshift.common.errors import PermanentError, RetryAfter, TransientError


class ProviderUnavailable(TransientError):
    """The mail provider could not be reached, timed out or asked to come back later (429, 5xx)."""


class ProviderOutcomeUnknown(ProviderUnavailable):
    """The request reached the provider but no answer came back (timeout, connection lost): maybe sent."""


class ProviderRejected(PermanentError):
    """The mail provider refused the message (4xx other than 429); sending it again would fail again."""


class UnknownTemplate(PermanentError):
    """No email template has this name."""


class TemplateFailed(PermanentError):
    """A template exists but could not be rendered (a bug in the template)."""


class ProviderBusy(RetryAfter):
    """The provider asked to come back later (429, 503 with ``Retry-After``); retried no sooner."""


class DeadToken(PermanentError):
    """The push provider says the device's token or subscription is gone (``UNREGISTERED``, 404, 410)."""
