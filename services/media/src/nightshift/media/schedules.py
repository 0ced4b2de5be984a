"""The media service's periodic jobs, fired by the scheduler service."""

from __future__ import annotations

from nightshift.common.contracts.media import CLEANUP_ORPHAN_MEDIA
from nightshift.common.schedules import Schedule

SCHEDULES = (
    Schedule(
        "cleanup_orphan_media",
        "30 2 * * *",
        CLEANUP_ORPHAN_MEDIA,
        overlap="skip",
        description="Delete uploads never attached to a post within the grace period.",
    ),
)
