"""What a scheduler process says about itself: ``/status`` and ``/livez``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis

from nightshift.scheduler.lease import LeaderLease
from nightshift.scheduler.state import ScheduleState

#: The loop counts as live while it has ticked within this many seconds.
MAX_SILENCE_S = 10.0


class Heartbeat:
    """When the loop last ticked (``/livez``)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def beat(self) -> None:
        """The loop is ticking now."""
        self.last = time.monotonic()

    def liveness(self, max_silence_s: float = MAX_SILENCE_S) -> tuple[bool, dict[str, Any]]:
        """Live while the loop has ticked within *max_silence_s*."""
        silence = time.monotonic() - self.last
        return silence <= max_silence_s, {"last_tick_s_ago": round(silence, 3)}


def describe(lease: LeaderLease, token: int | None, states: Mapping[str, ScheduleState]) -> dict[str, Any]:
    """``/status``: role, lease holder, fencing token and the next fires.

    Parameters:
      lease: This process's lease (its owner, and the holder as Redis sees it).
      token: The fencing token the loop is active under, None while it stands by.
      states: The loop's schedules, by name.
    """
    holder: dict[str, Any] | None = None
    try:
        current = lease.holder()
        holder = None if current is None else {"owner": current.owner, "token": current.token}
    except redis.RedisError as error:
        holder = {"error": str(error)}
    return {
        "role": "active" if token is not None else "standby",
        "owner": lease.owner,
        "fencing_token": token,
        "lease": holder,
        "schedules": [
            {
                "name": name,
                "cron": state.cron,
                "timezone": state.timezone,
                "paused": state.paused,
                "next_fire": None if state.paused or state.next_fire is None else state.next_fire.isoformat(),
                "last_message_id": state.last_message_id,
            }
            for name, state in sorted(dict(states).items())  # the loop may be changing it
        ],
    }
