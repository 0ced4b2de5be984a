"""Waiting for an observable outcome with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | Literal[False] | None], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll *predicate* until it returns something truthy; return that.

    Raises:
      AssertionError: After *timeout* seconds, naming *what* was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)
