"""The posts schedules and contracts are what the issue says, and the catalog routes post events to them."""

from __future__ import annotations

import pytest

from nightshift.common.errors import InvalidEvent
from nightshift.common.events import event_messages, validate_event
from nightshift.common.events.catalog import CATALOG
from nightshift.posts.schedules import SCHEDULES
from nightshift.posts.service import SERVICE


def test_schedules() -> None:
    by_name = {schedule.name: schedule for schedule in SCHEDULES}
    assert {name: (s.cron, s.contract.queue_name) for name, s in by_name.items()} == {
        "update_trending_hashtags": ("5 * * * *", "posts_normal"),
        "optimize_search_index": ("30 3 * * *", "posts_low"),
        "generate_content_analytics": ("0 4 * * *", "posts_normal"),
        "update_post_engagement_scores": ("0 5 * * *", "posts_normal"),
        "cleanup_old_posts": ("0 1 * * 0", "posts_low"),
        "send_content_digest_email": ("0 9 * * 1", "posts_low"),
        "purge_expired_exports": ("20 * * * *", "posts_low"),
    }
    assert all(s.timezone is None and s.overlap == "skip" for s in SCHEDULES)  # the platform's TIMEZONE
    assert SERVICE.queues == ("posts_high", "posts_normal", "posts_low")


@pytest.mark.parametrize("name", ["post.created", "post.updated", "post.deleted"])
def test_post_events_reach_the_indexer_with_what_happened(name: str) -> None:
    spec, event = validate_event(name, {"post_id": 5})
    by_queue = {m.queue_name: m for m in event_messages(spec, event)}
    assert by_queue["posts_high"].actor_name == "index_post"
    assert by_queue["posts_high"].kwargs == {"post_id": 5, "change": name.split(".")[1]}
    if name == "post.deleted":
        assert by_queue["media_low"].kwargs == {"post_id": 5}  # media still removes the files


def test_alerts_and_reindex_requests_are_catalogued() -> None:
    # Alerts go through the ops service's lifecycle (silences, webhook), which emails them via send_ops_alert.
    assert [s.contract.actor_name for s in CATALOG["ops.alert_raised"].subscribers] == ["record_raised_alert"]
    assert [s.contract.actor_name for s in CATALOG["posts.reindex_requested"].subscribers] == ["reindex_search"]
    with pytest.raises(InvalidEvent, match="severity"):
        validate_event(
            "ops.alert_raised",
            {"alert_key": "k", "source": "posts", "kind": "x", "severity": "panic", "summary": "s"},
        )


def test_export_requests_reach_export_content_on_the_high_lane() -> None:
    spec, event = validate_event(
        "export.requested",
        {"requester_id": 3, "what": "content", "format": "csv", "since": "2026-01-01", "until": "2026-01-31"},
    )
    [message] = event_messages(spec, event)
    assert (message.queue_name, message.actor_name) == ("posts_high", "export_content")
    assert message.kwargs == {
        "requester_id": 3,
        "what": "content",
        "format": "csv",
        "since": "2026-01-01",
        "until": "2026-01-31",
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"requester_id": 3, "what": "content", "format": "csv"}, "content exports need a date range"),
        ({"requester_id": 3, "what": "own_posts", "format": "csv", "since": "2026-01-01"}, "both since and until"),
        (
            {"requester_id": 3, "what": "own_posts", "format": "csv", "since": "2026-02-01", "until": "2026-01-01"},
            "since must not be after until",
        ),
        ({"requester_id": 3, "what": "everything", "format": "csv"}, "what"),
        ({"requester_id": 0, "what": "own_posts", "format": "csv"}, "requester_id"),
    ],
)
def test_malformed_export_requests_are_refused_before_anything_is_enqueued(
    payload: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        validate_event("export.requested", payload)
