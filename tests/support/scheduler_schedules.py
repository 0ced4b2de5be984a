"""One-second schedules for the scheduler's tests (``SCHEDULER_EXTRA_SCHEDULES``).

They target a test-only contract whose queue no worker consumes, so every fire
stays in Redis where the tests count it.
"""

from __future__ import annotations

import datetime as dt

from nightshift.common.contracts import Contract, Payload
from nightshift.common.lanes import Lane
from nightshift.common.schedules import Schedule


class Tick(Payload):
    label: str


#: A contract no service implements: messages stay in ``ticks_normal``.
TICK = Contract("ticks", "tick", Lane.NORMAL, Tick)

#: Every second.
EVERY_SECOND = "* * * * * *"

SCHEDULES = (
    Schedule("ticks.catch_up", EVERY_SECOND, TICK, {"label": "catch_up"}, misfire="catch_up", timezone="UTC"),
    Schedule(
        "ticks.coalesce", EVERY_SECOND, TICK, {"label": "coalesce"}, grace=dt.timedelta(seconds=30), timezone="UTC"
    ),
    Schedule("ticks.skip", EVERY_SECOND, TICK, {"label": "skip"}, misfire="skip", timezone="UTC"),
)
