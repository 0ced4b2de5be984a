"""The notifications service's periodic jobs: none yet.

Notifications only reacts to ``notification.requested``; the digests that will
be sent on a schedule are composed by the posts service. The empty tuple keeps
the service's shape the same as every other's.
"""

from __future__ import annotations

from nightshift.common.schedules import Schedule

SCHEDULES: tuple[Schedule, ...] = ()
