"""One every-second schedule for the ops tests of ``schedule_missed`` (``SCHEDULER_EXTRA_SCHEDULES``).

It targets the scheduler tests' contract, whose queue no worker consumes: what matters is
that the scheduler fires it (``handled_through`` moves) or, stopped, does not.
"""

from __future__ import annotations

from nightshift.common.schedules import Schedule
from tests.support.scheduler_schedules import EVERY_SECOND, TICK

#: The schedule the test watches.
HEARTBEAT = "opstest.heartbeat"

SCHEDULES = (Schedule(HEARTBEAT, EVERY_SECOND, TICK, {"label": "heartbeat"}, timezone="UTC"),)
