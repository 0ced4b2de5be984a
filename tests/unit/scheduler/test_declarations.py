"""Declaring schedules: validation at import and discovery from installed services."""

from __future__ import annotations

import pytest

from nightshift.common.contracts.users import CLEANUP_EXPIRED_TOKENS, SEND_WELCOME_EMAIL
from nightshift.common.errors import InvalidPayload
from nightshift.common.schedules import Schedule, crontab_to_trigger_fields, installed_schedules


def test_users_schedules_are_discovered_from_the_installed_service() -> None:
    schedules = installed_schedules()

    assert schedules["cleanup_expired_tokens"].cron == "0 2 * * *"
    assert schedules["cleanup_expired_tokens"].contract.queue_name == "users_low"
    assert schedules["update_user_statistics"].cron == "0 3 * * *"
    assert schedules["update_user_statistics"].contract.queue_name == "users_normal"


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"cron": "0 2 * *"}, "expected 5 fields"),
        ({"cron": "0 25 * * *"}, "cron '0 25 * * *'"),
        ({"cron": "0 2 * * 9"}, "weekday '9'"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"name": "Bad Name"}, "schedule name 'Bad Name'"),
        ({"misfire": "sometimes"}, "unknown misfire policy"),
    ],
)
def test_malformed_declarations_are_refused_naming_what_is_wrong(kwargs: dict[str, str], complaint: str) -> None:
    arguments = {"name": "cleanup", "cron": "0 2 * * *", "contract": CLEANUP_EXPIRED_TOKENS, **kwargs}

    with pytest.raises(ValueError, match=complaint.replace("*", r"\*")):
        Schedule(**arguments)  # type: ignore[arg-type]


def test_payload_is_checked_against_the_contract_at_import() -> None:
    with pytest.raises(InvalidPayload, match="user_id"):
        Schedule("welcome", "0 2 * * *", SEND_WELCOME_EMAIL, payload={})


def test_crontab_weekday_numbers_become_names() -> None:
    assert crontab_to_trigger_fields("0 9 * * 1")["day_of_week"] == "mon"
    assert crontab_to_trigger_fields("0 9 * * 0-6")["day_of_week"] == "sun,mon,tue,wed,thu,fri,sat"
    assert crontab_to_trigger_fields("0 9 * * 7")["day_of_week"] == "sun"
    assert crontab_to_trigger_fields("0 9 * * mon-fri")["day_of_week"] == "mon-fri"
    assert crontab_to_trigger_fields("*/5 0 9 * * 1")["second"] == "*/5"
