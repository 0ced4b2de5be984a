"""Entry point of the notifications service: one worker of the I/O-bound profile, and its public listener.

``nightshift run notifications`` calls :func:`main`: many threads (the spec's 16)
in one process, since sending waits on the network, not the CPU. Beside the
worker runs the public listener (one-click unsubscribe, SendGrid's event webhook)
on ``NOTIFICATIONS_PUBLIC_PORT``.
"""

from __future__ import annotations

import logging

from nightshift.common import runtime
from nightshift.common.service import ServiceSpec
from nightshift.common.worker import run_worker
from nightshift.notifications.public import build_public_server
from nightshift.notifications.settings import NotificationsSettings

logger = logging.getLogger(__name__)


def main(spec: ServiceSpec) -> int:
    """Run the notifications worker and its public listener until SIGTERM; return the exit code."""
    settings = runtime.service_settings(NotificationsSettings)  # a bad variable stops the process here
    try:
        server = build_public_server().start()
    except OSError as error:
        if settings.environment == "production":
            raise
        # Locally the port may be taken (another checkout running): mail and push still work.
        logger.warning(
            "No public listener (port %d: %s); unsubscribe links will not answer.", settings.public_port, error
        )
        return run_worker(spec)
    logger.info("Notifications public listener on port %d.", server.port)
    try:
        return run_worker(spec)
    finally:
        server.stop()
