"""Entry point of the scheduler service: one scheduler process, active or standing by.

``nightshift run scheduler`` calls :func:`main`. The scheduler consumes no
queue; :func:`nightshift.scheduler.main.run` holds the lease, fires the
schedules and serves health until SIGTERM.
"""

from __future__ import annotations

from nightshift.common.service import ServiceSpec
from nightshift.scheduler.main import run


def main(spec: ServiceSpec) -> int:
    """Run one scheduler until SIGTERM; return the exit code."""
    return run(spec)
