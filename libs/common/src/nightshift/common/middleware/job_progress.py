"""Copy a job's last progress and its result to PostgreSQL when it ends."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from sqlalchemy import Engine

from nightshift.common.jobs import progress, store

logger = logging.getLogger(__name__)


class JobProgress(Middleware):
    """When a message that reported progress ends, write its last report to Redis and both to ``job_progress``.

    Messages that never reported cost one dictionary lookup. Reports themselves
    never touch the database (see :mod:`nightshift.common.jobs.progress`).

    Parameters:
      engine: Where ``job_progress`` is; None keeps progress in Redis only.
    """

    def __init__(self, *, engine: Engine | None) -> None:
        self.engine = engine

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        reporter = progress.release(message.message_id)
        if reporter is None:
            return
        try:
            reporter.flush()
            if self.engine is not None:
                store.persist(self.engine, message.message_id, reporter.last, reporter.result)
        except Exception:
            logger.warning("Could not keep the progress of job %s.", message.message_id, exc_info=True)

    after_skip_message = after_process_message
