"""Pre-scaling is derived from the schedules, and the committed manifests are what the generator writes."""

from __future__ import annotations

import pytest

from deploy.generated import stale_files
from deploy.manifests import render
from deploy.pools import PRESCALE_HOLD_MINUTES, PRESCALE_LEAD_MINUTES, deployed
from deploy.prescale import cron_triggers, shift_cron
from nightshift.common.contracts.users import CLEANUP_EXPIRED_TOKENS
from nightshift.common.schedules import Schedule, installed_schedules

#: A stand-in for the weekly digest: Monday 09:00, flooding the notifications low lane.
DIGEST = Schedule("weekly_digest", "0 9 * * 1", CLEANUP_EXPIRED_TOKENS, floods=("notifications_low",))


def test_the_committed_manifests_are_the_generated_ones() -> None:
    """Regenerate with ``python -m deploy.manifests`` after changing pools or a schedule's ``floods``."""
    assert stale_files(render()) == []


def test_every_installed_flooding_schedule_has_its_cron_trigger_in_the_manifests() -> None:
    files = render()
    (scaled_objects,) = [text for path, text in files.items() if path.name == "scaledobjects.yaml"]
    for schedule in installed_schedules().values():
        for queue in schedule.floods:
            assert f"prescale-{schedule.name.replace('_', '-')}" in scaled_objects, (schedule.name, queue)


def test_a_flooding_schedule_raises_the_pool_before_each_fire() -> None:
    notifications = deployed("notifications")
    assert notifications.pool is not None
    (trigger,) = cron_triggers([DIGEST], notifications, timezone="Europe/Paris")
    assert trigger["type"] == "cron"
    assert trigger["metadata"] == {
        "timezone": "Europe/Paris",
        "start": f"{60 - PRESCALE_LEAD_MINUTES} 8 * * 1",
        "end": f"{PRESCALE_HOLD_MINUTES} 9 * * 1",
        "desiredReplicas": str(notifications.pool.prescale_replicas),
    }


def test_the_generated_scaled_object_carries_the_trigger() -> None:
    files = render([DIGEST])
    (scaled_objects,) = [text for path, text in files.items() if path.name == "scaledobjects.yaml"]
    assert scaled_objects.count("prescale-weekly-digest") == 1
    assert "start: 55 8 * * 1" in scaled_objects


def test_other_pools_are_not_raised() -> None:
    assert cron_triggers([DIGEST], deployed("media"), timezone="Europe/Paris") == []


def test_a_schedule_in_its_own_timezone_keeps_it() -> None:
    schedule = Schedule(
        "ny_digest", "30 7 * * *", CLEANUP_EXPIRED_TOKENS, timezone="America/New_York", floods=("users_low",)
    )
    (trigger,) = cron_triggers([schedule], deployed("users"), timezone="Europe/Paris")
    assert trigger["metadata"]["timezone"] == "America/New_York"
    assert trigger["metadata"]["start"] == "25 7 * * *"


@pytest.mark.parametrize(
    ("cron", "minutes", "expected"),
    [
        ("0 9 * * 1", -5, "55 8 * * 1"),
        ("5 * * * *", -5, "0 * * * *"),
        ("3 * * * *", -5, "58 * * * *"),
        ("0 9 * * 1", 30, "30 9 * * 1"),
    ],
)
def test_shift_cron(cron: str, minutes: int, expected: str) -> None:
    assert shift_cron(cron, minutes) == expected


@pytest.mark.parametrize("cron", ["*/5 * * * *", "0 9,17 * * *", "2 0 * * *", "30 0 9 * * 1"])
def test_shift_cron_refuses_what_it_cannot_keep_exact(cron: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        shift_cron(cron, -5)


def test_floods_must_name_queues() -> None:
    with pytest.raises(ValueError, match="floods 'notifications'"):
        Schedule("bad", "0 9 * * 1", CLEANUP_EXPIRED_TOKENS, floods=("notifications",))
