"""Priority lanes and the queue names derived from them."""

from __future__ import annotations

import enum


class Lane(enum.StrEnum):
    """The four priority lanes; a service has one queue per lane it uses."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def priority(self) -> int:
        """Dramatiq actor priority: lower numbers are taken first by a worker."""
        return _PRIORITIES[self]


_PRIORITIES = {Lane.CRITICAL: 0, Lane.HIGH: 10, Lane.NORMAL: 50, Lane.LOW: 100}


def queue_name(service: str, lane: Lane) -> str:
    """Return the queue of *service* for *lane*, e.g. ``posts_normal``.

    No dots: Dramatiq appends ``.DQ`` and ``.XQ`` to queue names.
    """
    return f"{service}_{lane.value}"
