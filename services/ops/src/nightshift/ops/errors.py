"""Errors of the ops service."""

from __future__ import annotations

from nightshift.common.errors import NightshiftError


class OpsError(NightshiftError):
    """Base of the ops service's errors."""


class UnknownOperator(OpsError):
    """No operator (or API token) has that name."""


class InvalidCredentials(OpsError):
    """A name and password, a session or a token that does not sign anyone in."""


class LoginThrottled(OpsError):
    """Too many failed logins for a name or an address; try again later.

    Parameters:
      retry_after_s: How long until a login may be tried again.
    """

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
