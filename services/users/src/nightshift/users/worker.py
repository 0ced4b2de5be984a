"""Entry point of the users service: one worker process of the spec's threads.

``nightshift run users`` calls :func:`main`.
"""

from __future__ import annotations

from nightshift.common.service import ServiceSpec
from nightshift.common.worker import run_worker


def main(spec: ServiceSpec) -> int:
    """Run the users worker until SIGTERM; return the exit code."""
    return run_worker(spec)
