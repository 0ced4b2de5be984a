"""The ops service's periodic jobs: the platform's own maintenance, fired by the scheduler."""

from __future__ import annotations

from nightshift.common.contracts.ops import (
    BUILD_REPORT,
    CHECK_DEPENDENCIES,
    COLLECT_CACHE_STATS,
    PURGE_EXPIRED_DATA,
    ROLL_UP_ACTOR_STATS,
)
from nightshift.common.schedules import Schedule

SCHEDULES = (
    Schedule(
        "collect_cache_stats",
        "*/5 * * * *",
        COLLECT_CACHE_STATS,
        overlap="skip",
        description="Cache hits, misses, size and key families with their TTLs (a point of the series).",
    ),
    Schedule(
        "purge_expired_data",
        "17 * * * *",
        PURGE_EXPIRED_DATA,
        overlap="skip",
        description="Delete what is past retention (job records, audit, outbox, keys, logs, dead letters, alerts).",
    ),
    Schedule(
        "roll_up_actor_stats",
        "* * * * *",
        ROLL_UP_ACTOR_STATS,
        overlap="skip",
        description="Sum the audit rows recorded since the last run per actor and minute (the Actors page).",
    ),
    Schedule(
        "check_dependencies",
        "*/10 * * * *",
        CHECK_DEPENDENCIES,
        overlap="skip",
        description="Probe PostgreSQL, Redis, storage and the mail provider; failures raise alerts.",
    ),
    Schedule(
        "weekly_report",
        "0 8 * * 1",
        BUILD_REPORT,
        payload={"period": "weekly"},
        overlap="skip",
        misfire="coalesce",
        description="Last week's report: emailed to the operators and shown on the dashboard.",
    ),
    Schedule(
        "monthly_report",
        "0 8 1 * *",
        BUILD_REPORT,
        payload={"period": "monthly"},
        overlap="skip",
        misfire="coalesce",
        description="Last month's report: emailed to the operators and shown on the dashboard.",
    ),
)
