"""Entry point of the media service: a pool of single-threaded worker processes.

``nightshift run media`` calls :func:`main`. The CPU-bound profile is
``MEDIA_PROCESSES`` processes (one per CPU by default) of one thread each,
each holding ``MEDIA_PREFETCH`` (1) message at a time.
"""

from __future__ import annotations

from nightshift.common import runtime
from nightshift.common.service import ServiceSpec
from nightshift.common.worker_pool import run_worker_pool
from nightshift.media.settings import MediaSettings


def main(spec: ServiceSpec) -> int:
    """Run the media worker pool until SIGTERM; return the exit code."""
    settings = runtime.service_settings(MediaSettings)
    return run_worker_pool(spec, processes=settings.processes, threads=1, prefetch=settings.prefetch)
