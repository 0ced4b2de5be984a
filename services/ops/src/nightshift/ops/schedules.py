"""The ops service's periodic jobs: none yet.

The ops process serves the dashboard and consumes no queue; the platform
maintenance jobs of the spec (cache statistics, retention purges, dependency
checks, reports) will come with its worker. The empty tuple keeps the shape.
"""

from __future__ import annotations

from nightshift.common.schedules import Schedule

SCHEDULES: tuple[Schedule, ...] = ()
