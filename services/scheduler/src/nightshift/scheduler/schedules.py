"""The scheduler service's own periodic jobs: none.

The scheduler fires the schedules every other service declares in its
``schedules.py``; it runs no actors, so it has nothing to schedule for itself.
"""

from __future__ import annotations

from nightshift.common.schedules import Schedule

SCHEDULES: tuple[Schedule, ...] = ()
