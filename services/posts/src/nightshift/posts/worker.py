"""Entry point of the posts service: one worker process with the service's threads.

``nightshift run posts`` calls :func:`main`.
"""

from __future__ import annotations

from nightshift.common.service import ServiceSpec
from nightshift.common.worker import run_worker


def main(spec: ServiceSpec) -> int:
    """Run the posts worker until SIGTERM; return the exit code."""
    return run_worker(spec)
