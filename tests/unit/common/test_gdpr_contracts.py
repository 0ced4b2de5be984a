"""The GDPR workflow's contracts and events: parts per service, and the finishing step each kind gets."""

from __future__ import annotations

import pytest

from nightshift.common.contracts.gdpr import GDPR_SERVICES, erase_part, export_part
from nightshift.common.errors import InvalidEvent
from nightshift.common.events import event_messages, validate_event
from nightshift.common.gdpr.scrub import names_subject
from nightshift.common.gdpr.workflow import part_message_id


def test_every_service_has_an_export_and_an_erase_part_on_its_own_high_queue() -> None:
    for service in GDPR_SERVICES:
        assert (export_part(service).actor_name, export_part(service).queue_name) == (
            f"gdpr_export_{service}",
            f"{service}_high",
        )
        assert erase_part(service).actor_name == f"gdpr_erase_{service}"
    with pytest.raises(ValueError, match="'billing' takes no part"):
        export_part("billing")


@pytest.mark.parametrize(("kind", "actor"), [("export", "assemble_user_export"), ("erasure", "finish_user_erasure")])
def test_the_last_part_starts_the_finishing_step_of_its_kind(kind: str, actor: str) -> None:
    spec, event = validate_event("gdpr.parts_completed", {"request_id": 4, "kind": kind})
    messages = event_messages(spec, event)
    assert [(m.actor_name, m.kwargs) for m in messages] == [(actor, {"request_id": 4})]


def test_requests_carry_the_request_id_only() -> None:
    for name in ("gdpr.export_requested", "gdpr.erasure_requested"):
        with pytest.raises(InvalidEvent, match="user_id"):
            validate_event(name, {"request_id": 1, "user_id": 5})


def test_part_job_ids_are_stable_and_distinct() -> None:
    ids = {part_message_id(1, kind, service) for kind in ("export", "erasure") for service in GDPR_SERVICES}
    assert len(ids) == 2 * len(GDPR_SERVICES)
    assert part_message_id(1, "erasure", "posts") == part_message_id(1, "erasure", "posts")


def test_a_payload_names_the_subject_by_its_user_id_only() -> None:
    assert names_subject({"user_id": 42, "template": "welcome"}, 42)
    assert names_subject({"user_id": "42"}, 42)
    assert not names_subject({"user_id": 420}, 42)
    assert not names_subject({"post_id": 42}, 42)
    assert not names_subject({"user_id": True}, 1)
    assert not names_subject(["user_id", 42], 42)
