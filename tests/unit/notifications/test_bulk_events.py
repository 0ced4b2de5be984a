"""Which bulk recipient a SendGrid event is about, from the custom arguments of its personalization."""

from __future__ import annotations

from typing import Any

import pytest

from nightshift.notifications.bulk_reconcile import event_recipient


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        # SendGrid posts custom arguments as top-level fields of each event.
        (
            {
                "event": "processed",
                "email": "a@b.test",
                "nightshift_campaign": "digest:2026-11-23",
                "nightshift_user": "42",
            },
            ("digest:2026-11-23", 42),
        ),
        ({"event": "delivered", "custom_args": {"nightshift_campaign": "c1", "nightshift_user": "7"}}, ("c1", 7)),
        ({"event": "processed", "unique_args": {"nightshift_campaign": "c1", "nightshift_user": 7}}, ("c1", 7)),
        # A single email, a forged or incomplete one: not a bulk recipient.
        ({"event": "processed", "idempotency_key": "welcome:42"}, None),
        ({"event": "processed", "nightshift_campaign": "c1", "nightshift_user": "42; DROP"}, None),
        ({"event": "processed", "nightshift_campaign": "", "nightshift_user": "42"}, None),
        ({"event": "processed", "nightshift_campaign": "c1"}, None),
    ],
)
def test_event_recipient(event: dict[str, Any], expected: tuple[str, int] | None) -> None:
    assert event_recipient(event) == expected
