"""Test actors for the ops service's tests, on a queue of their own (``opstest_high``).

``ops_flaky`` fails until the file it is given exists: it retries, dies, and
succeeds once replayed after "the cause is fixed" (the file created).
"""

from __future__ import annotations

import time
from pathlib import Path

import dramatiq

from nightshift.common.revocation import check_abort

#: The queue of the test actors (declared to ops through ``OPS_EXTRA_QUEUES``).
QUEUE = "opstest_high"


class MissingFile(RuntimeError):
    """The file the flaky actor needs is not there yet."""


@dramatiq.actor(queue_name=QUEUE, actor_name="ops_flaky", max_retries=2)
def ops_flaky(path: str) -> None:
    if not Path(path).exists():
        raise MissingFile(f"{path} is missing")
    Path(path).write_text("done")


@dramatiq.actor(queue_name=QUEUE, actor_name="ops_touch", max_retries=0)
def ops_touch(path: str) -> None:
    Path(path).write_text("ran")


@dramatiq.actor(queue_name=QUEUE, actor_name="ops_long", max_retries=0)
def ops_long(folder: str) -> None:
    """Thirty seconds with a safe point per step; leaves ``started`` and, if it gets there, ``finished``."""
    Path(folder, "started").write_text("started")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        check_abort()
        time.sleep(0.05)
    Path(folder, "finished").write_text("finished")
