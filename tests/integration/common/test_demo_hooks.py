"""``nightshift up``'s demo traffic comes from each service's ``ServiceSpec.demo`` hook."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.db.engine import make_session_factory
from nightshift.common.db.models import OutboxEvent, User
from nightshift.common.service import installed_services, load_object
from nightshift.common.settings import CommonSettings
from nightshift.media.models import Media

pytestmark = pytest.mark.integration


def test_every_demo_hook_writes_its_rows_and_event_in_one_transaction(env: CommonSettings, clean_db: Engine) -> None:
    hooks = {name: spec.demo for name, spec in installed_services().items() if spec.demo}
    assert hooks["users"] == "nightshift.users.demo:tick"
    assert hooks["media"] == "nightshift.media.demo:tick"

    made: dict[str, int] = {}
    for name in ("users", "media"):
        tick: Any = load_object(hooks[name])
        made[name] = tick(make_session_factory(clean_db))

    with Session(clean_db) as session:
        user = session.get(User, made["users"])
        media = session.get(Media, made["media"])
        events = {(e.event_name, e.aggregate_id) for e in session.scalars(select(OutboxEvent))}
    assert user is not None
    assert user.email == f"demo+{user.id}@example.org"
    assert media is not None
    assert runtime.storage().size(media.original_key) > 0
    assert events == {("user.registered", f"user:{user.id}"), ("media.uploaded", f"media:{media.id}")}
