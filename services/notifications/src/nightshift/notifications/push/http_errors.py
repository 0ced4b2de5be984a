"""Classifying a push provider's HTTP answer: dead token, retry (after ``Retry-After``), or refusal."""

from __future__ import annotations

import email.utils
import time

from nightshift.common.errors import NightshiftError
from nightshift.notifications.errors import DeadToken, ProviderBusy, ProviderRejected, ProviderUnavailable

#: Answers meaning the token or subscription no longer exists.
DEAD_STATUSES = frozenset({404, 410})


def retry_after_ms(value: str | None) -> int | None:
    """Milliseconds a ``Retry-After`` header asks for (seconds or an HTTP date), if any."""
    if not value:
        return None
    if value.strip().isdigit():
        return int(value.strip()) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int((when.timestamp() - time.time()) * 1000))


def classify(provider: str, status: int, retry_after: str | None, *, dead: bool = False) -> NightshiftError:
    """The error for *provider*'s answer *status* (*dead*: the provider said the token is gone)."""
    description = f"{provider} answered {status}"
    if dead or status in DEAD_STATUSES:
        return DeadToken(description)
    if status == 429 or status >= 500:
        wait = retry_after_ms(retry_after)
        if wait is not None:
            return ProviderBusy(f"{description} (retry after {wait} ms)", retry_after_ms=wait)
        return ProviderUnavailable(description)
    return ProviderRejected(description)
