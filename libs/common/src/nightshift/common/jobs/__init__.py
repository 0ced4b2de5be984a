"""Jobs that report: progress, results and abort checks for actors; status and live events for callers.

The asynchronous request-response pattern (``docs/patterns.md``): a caller
publishes, gets the job id at once, then follows the job with :func:`job_status`
or the event stream of :func:`open_job_events` (served as server-sent events by
the ops service), while the actor calls :func:`report_progress`,
:func:`set_result` and :func:`check_abort`.
"""

from __future__ import annotations

from nightshift.common.jobs.events import (
    FINAL_EVENT_ID,
    JobUpdate,
    format_sse,
    open_job_events,
    sse_stream,
)
from nightshift.common.jobs.progress import report_progress, set_result
from nightshift.common.jobs.status import FINAL_STATUSES, JobStatus, authorize, job_status
from nightshift.common.jobs.store import Progress
from nightshift.common.revocation import check_abort

__all__ = [
    "FINAL_EVENT_ID",
    "FINAL_STATUSES",
    "JobStatus",
    "JobUpdate",
    "Progress",
    "authorize",
    "check_abort",
    "format_sse",
    "job_status",
    "open_job_events",
    "report_progress",
    "set_result",
    "sse_stream",
]
