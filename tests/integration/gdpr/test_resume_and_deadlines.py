"""An erasure survives failures and crashes; a request past its deadline raises one alert; proofs resist changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from nightshift.common import runtime
from nightshift.common.db.engine import make_session_factory, transaction
from nightshift.common.db.models import GdprRequest, JobRecord, OutboxEvent, User
from nightshift.common.errors import ConfigurationError, PermanentError
from nightshift.common.gdpr.deadlines import alert_overdue_requests
from nightshift.common.gdpr.proof import sign, verify_proof
from nightshift.common.gdpr.requests import InvalidRequester, request_erasure, request_export
from nightshift.common.gdpr.settings import GdprSettings
from nightshift.common.gdpr.workflow import part_message_id, start_parts
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.media import gdpr as media_gdpr
from nightshift.media.models import Media
from nightshift.notifications import gdpr as notifications_gdpr
from nightshift.posts import gdpr as posts_gdpr
from nightshift.users import gdpr as users_gdpr
from tests.integration.gdpr.conftest import SUBJECT_ID, World, make_person, upload, wait_until_done, write_post

pytestmark = pytest.mark.integration

KEY = b"test-proof-key"
MONTH = dt.timedelta(days=30)


@pytest.fixture
def media_fails_once(clean_db: Engine) -> Iterator[None]:
    """The first statement deleting media rows fails, as a database dropping a connection would."""
    with clean_db.begin() as connection:
        connection.execute(text("CREATE SEQUENCE gdpr_fail_once"))
        connection.execute(
            text(
                "CREATE FUNCTION gdpr_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF nextval('gdpr_fail_once') = 1 THEN RAISE EXCEPTION 'injected failure'; END IF; "
                "RETURN NULL; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER gdpr_fail_once BEFORE DELETE ON media "
                "FOR EACH STATEMENT EXECUTE FUNCTION gdpr_fail_once()"
            )
        )
    yield
    with clean_db.begin() as connection:
        connection.execute(text("DROP TRIGGER gdpr_fail_once ON media"))
        connection.execute(text("DROP FUNCTION gdpr_fail_once()"))
        connection.execute(text("DROP SEQUENCE gdpr_fail_once"))


def test_a_part_that_fails_once_is_retried_and_the_erasure_completes(
    world: World, platform: NightshiftRedisBroker, clean_db: Engine, media_fails_once: None
) -> None:
    storage = runtime.storage()
    with transaction(make_session_factory(clean_db)) as session:
        request, _ = request_erasure(session, SUBJECT_ID, requested_by="subject", key=KEY, deadline=MONTH)
        request_id = request.id

    erased = wait_until_done(clean_db, platform, request_id)

    platform.record_writer.flush()
    with Session(clean_db) as session:
        media_job = session.get(JobRecord, part_message_id(request_id, "erasure", "media"))
        left = session.scalars(select(Media.id).where(Media.owner_id == SUBJECT_ID)).all()
    assert media_job is not None and (media_job.status, media_job.attempts) == ("done", 2)
    assert left == []
    assert not [key for key in world.subject.file_keys if storage.exists(key)]
    assert erased.summary["parts"]["media"]["counts"] == {"media": 1, "files": len(world.subject.file_keys)}


def test_an_erasure_interrupted_between_parts_resumes_where_it_stopped(
    broker: NightshiftRedisBroker, clean_db: Engine
) -> None:
    sessions = make_session_factory(clean_db)
    storage = runtime.storage()
    person = make_person(clean_db, SUBJECT_ID, "zelda.quixote@example.org", "Zelda Quixote")
    post_id = write_post(clean_db, person, "Zelda's lighthouse #zqlighthouse")
    upload(clean_db, person, post_id, "zelda.jpg")
    with transaction(sessions) as session:
        request, created = request_erasure(session, SUBJECT_ID, requested_by="operator:bob", key=KEY, deadline=MONTH)
        request_id = request.id
    assert created

    sent = start_parts(sessions, request_id, kind="erasure", broker=broker)
    assert sorted(m.actor_name for m in sent) == sorted(
        ["gdpr_erase_users", "gdpr_erase_posts", "gdpr_erase_media", "gdpr_erase_notifications"]
    )
    assert users_gdpr.erase_part(sessions, request_id) is not None
    assert posts_gdpr.erase_part(sessions, runtime.app_redis(), request_id) == {
        "search_documents": 1,
        "comments": 0,
        "likes": 0,
        "shares": 0,
        "posts": 1,
        "hashtags": 1,
        "analytics_days_stripped": 0,
        "cached_rankings_stripped": 0,
    }
    # The worker dies here. The finishing step cannot run early.
    with pytest.raises(PermanentError, match="parts still pending"):
        users_gdpr.finish_erasure(sessions, storage, broker, request_id)

    # Redelivered, the start sends only what is left, with the same job ids.
    resent = start_parts(sessions, request_id, kind="erasure", broker=broker)
    assert sorted(m.actor_name for m in resent) == ["gdpr_erase_media", "gdpr_erase_notifications"]
    assert {m.message_id for m in resent} <= {m.message_id for m in sent}
    assert posts_gdpr.erase_part(sessions, runtime.app_redis(), request_id) is None  # done parts do nothing
    assert media_gdpr.erase_part(sessions, storage, request_id) == {"media": 1, "files": 7}
    assert notifications_gdpr.erase_part(sessions, request_id, outbox_dir=None) == {
        "outbox_emails": 0,
        **{table.name: 0 for table in notifications_gdpr.USER_TABLES},
    }
    assert media_gdpr.erase_part(sessions, storage, request_id) is None

    with Session(clean_db) as session:
        completions = session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.event_name == "gdpr.parts_completed")
        ).all()
    assert completions == [{"request_id": request_id, "kind": "erasure"}]

    record = users_gdpr.finish_erasure(sessions, storage, broker, request_id)
    assert record is not None and record["finish"]["counts"]["users"] == 1
    assert users_gdpr.finish_erasure(sessions, storage, broker, request_id) is None
    assert start_parts(sessions, request_id, kind="erasure", broker=broker) == []
    with Session(clean_db) as session:
        assert session.get(User, SUBJECT_ID) is None
        done = session.get(GdprRequest, request_id)
    assert done is not None and (done.status, done.user_id, done.requested_by) == ("done", None, "operator:bob")


def test_a_request_past_its_deadline_raises_one_alert(broker: NightshiftRedisBroker, clean_db: Engine) -> None:
    sessions = make_session_factory(clean_db)
    make_person(clean_db, SUBJECT_ID, "zelda.quixote@example.org", "Zelda Quixote")
    with transaction(sessions) as session:
        late = request_export(session, SUBJECT_ID, requested_by="subject", key=KEY, deadline=MONTH).id
    start_parts(sessions, late, kind="export", broker=broker)
    now = dt.datetime.now(dt.UTC)

    assert alert_overdue_requests(sessions, now=now + dt.timedelta(days=29)) == []
    assert alert_overdue_requests(sessions, now=now + dt.timedelta(days=31)) == [late]
    assert alert_overdue_requests(sessions, now=now + dt.timedelta(days=32)) == []

    with Session(clean_db) as session:
        alerts = session.scalars(select(OutboxEvent.payload).where(OutboxEvent.event_name == "ops.alert_raised")).all()
    assert len(alerts) == 1
    alert: dict[str, Any] = alerts[0]
    assert (alert["alert_key"], alert["kind"], alert["severity"]) == (
        f"gdpr_overdue:{late}",
        "gdpr_overdue",
        "critical",
    )
    assert alert["facts"]["pending_parts"] == "media,notifications,posts,users"
    assert str(SUBJECT_ID) not in str(alert) and "zelda" not in str(alert).lower()


def test_settings_keep_the_deadline_within_a_month_and_want_a_key_in_production() -> None:
    with pytest.raises(ValidationError, match="deadline_days"):
        GdprSettings(deadline_days=32)
    with pytest.raises(ConfigurationError, match="GDPR_PROOF_KEY"):
        GdprSettings(proof_key=None).key("production")
    assert GdprSettings(proof_key="s3cret").key("production") == b"s3cret"  # type: ignore[arg-type]


def test_a_proof_is_refused_once_changed_or_checked_with_another_key() -> None:
    proof = sign({"request_id": 7, "kind": "erasure", "parts": {"posts": {"counts": {"posts": 3}}}}, KEY)
    assert verify_proof(proof, KEY)
    assert not verify_proof(proof, b"another key")
    changed = {**proof, "record": {**proof["record"], "parts": {"posts": {"counts": {"posts": 2}}}}}
    assert not verify_proof(changed, KEY)


def test_who_asks_is_an_operator_login_or_the_subject_never_an_address(
    broker: NightshiftRedisBroker, clean_db: Engine
) -> None:
    make_person(clean_db, SUBJECT_ID, "zelda.quixote@example.org", "Zelda Quixote")
    with transaction(make_session_factory(clean_db)) as session, pytest.raises(InvalidRequester):
        request_export(session, SUBJECT_ID, requested_by="zelda.quixote@example.org", key=KEY, deadline=MONTH)
