"""Entry point of the notifications service: one worker of the I/O-bound profile.

``nightshift run notifications`` calls :func:`main`: many threads (the spec's 16)
in one process, since sending mail waits on the network, not the CPU.
"""

from __future__ import annotations

from nightshift.common.service import ServiceSpec
from nightshift.common.worker import run_worker


def main(spec: ServiceSpec) -> int:
    """Run the notifications worker until SIGTERM; return the exit code."""
    return run_worker(spec)
