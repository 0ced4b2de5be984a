"""Least privilege in PostgreSQL: each service's role may do what its code does, and nothing else.

A login user per service is made a member of the role the migrations created
(as a deployment does); the denials are checked statement by statement, and a
real piece of each service's work runs connected as that user.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from nightshift.common import runtime, schedule_control
from nightshift.common.contracts import NoArguments
from nightshift.common.contracts.posts import DayRef
from nightshift.common.db.engine import make_engine, make_session_factory, transaction
from nightshift.common.db.models import ScheduleRow
from nightshift.common.db.roles import MIGRATIONS_ROLE, WORKER_ROLE, service_role
from nightshift.common.events.catalog import WEBHOOK_EVENTS
from nightshift.common.gdpr.requests import request_erasure, request_export
from nightshift.common.gdpr.workflow import start_parts
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.ops import actor_rollup, maintenance
from nightshift.ops.settings import OpsSettings
from tests.support.expired_data import EXPECTED_PURGE, NOW, seed_expired_and_young
from tests.support.ops_actors import QUEUE
from tests.support.servers import psycopg_url

pytestmark = pytest.mark.integration

SERVICES = ("users", "posts", "media", "notifications", "scheduler", "ops")

#: Statements a service's role must be refused, each with why it would be wrong.
DENIED = {
    "media": ["UPDATE users SET display_name = display_name", "SELECT * FROM auth_tokens", "DELETE FROM posts"],
    "posts": [
        "SELECT * FROM auth_tokens",
        "UPDATE users SET display_name = display_name",
        "SELECT * FROM email_deliveries",
    ],
    "users": ["SELECT * FROM media", "UPDATE posts SET body = body", "SELECT * FROM ops_operators"],
    "notifications": [
        "UPDATE users SET display_name = display_name",
        "SELECT * FROM auth_tokens",
        "INSERT INTO posts DEFAULT VALUES",
    ],
    "scheduler": ["SELECT * FROM users", "SELECT * FROM ops_api_tokens", "DELETE FROM job_records"],
    "ops": [
        "SELECT * FROM auth_tokens",
        "SELECT * FROM users",
        "UPDATE media SET status = status",
        # The purge may delete expired deliveries by date, never read who got which email.
        "SELECT user_id, template FROM email_deliveries",
        "UPDATE email_deliveries SET template = template",
        "DELETE FROM posts",
    ],
}


def login_url(database_url: str, service: str) -> str:
    """*database_url* with a login user who is a member of *service*'s role (created if missing)."""
    user = f"test_login_{service}"
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
            admin.execute(f"CREATE ROLE {user} LOGIN IN ROLE {service_role(service)}")
    return make_url(database_url).set(username=user).render_as_string(hide_password=False)


@pytest.fixture
def as_role(env: CommonSettings, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[object]:
    """Switch ``DATABASE_URL`` (and so ``runtime``) to a service's login user."""

    def switch(service: str) -> None:
        monkeypatch.setenv("DATABASE_URL", login_url(database_url, service))
        runtime.reset()

    yield switch
    runtime.reset()


def test_the_roles_exist_without_login_and_share_the_worker_grants(engine: Engine) -> None:
    with engine.connect() as connection:
        rows: dict[str, bool] = dict(
            connection.execute(
                text("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'nightshift\\_%'")
            ).all()
        )
        for service in SERVICES:
            assert rows[service_role(service)] is False, service
            member = connection.execute(
                text("SELECT pg_has_role(:role, :worker, 'MEMBER')"),
                {"role": service_role(service), "worker": WORKER_ROLE},
            ).scalar_one()
            assert member, service
        assert rows[WORKER_ROLE] is False and rows[MIGRATIONS_ROLE] is False
        # What existed when the roles came is handed to the owner; later objects belong to whoever
        # runs the migrations, which a deployment makes the owner (docs/security.md).
        owners = set(
            connection.execute(
                text(
                    "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename IN ('users', 'auth_tokens', 'job_records', 'outbox_events', 'schedules')"
                )
            ).scalars()
        )
        assert owners == {MIGRATIONS_ROLE}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_role_is_refused_what_its_code_never_does(service: str, database_url: str, clean_db: Engine) -> None:
    with psycopg.connect(psycopg_url(login_url(database_url, service)), autocommit=True) as connection:
        for statement in [*DENIED[service], "CREATE TABLE intruder (id int)", "DROP TABLE job_records"]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)
        # What every worker writes is allowed to all.
        connection.execute(
            "INSERT INTO processed_keys (key, processed_at) VALUES (%s, now())", (f"role-check:{service}",)
        )
        assert connection.execute("SELECT count(*) FROM job_records").fetchone() == (0,)


def test_each_service_does_its_real_work_as_its_role(
    as_role: object, clean_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightshift.common.contracts.posts import ExportRequest
    from nightshift.media import actors as media_actors
    from nightshift.notifications import actors as notification_actors
    from nightshift.ops import accounts
    from nightshift.posts import actors as posts_actors
    from nightshift.posts.exports import ExportLimits, export_content
    from nightshift.users import actors as users_actors

    switch = as_role
    assert callable(switch)
    with clean_db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, display_name, created_at) VALUES "
                "(1, 'ada@example.com', 'Ada', now() - interval '3 days')"
            )
        )
        connection.execute(
            text("INSERT INTO posts (id, author_id, body, created_at) VALUES (1, 1, 'hello #world', now())")
        )

    switch("users")
    users_actors.update_user_statistics.fn(**NoArguments().model_dump(mode="json"))
    users_actors.cleanup_expired_tokens.fn(**NoArguments().model_dump(mode="json"))

    switch("posts")
    posts_actors.update_post_engagement_scores.fn(**DayRef(day=dt.date.today()).model_dump(mode="json"))
    posts_actors.generate_content_analytics.fn(**DayRef(day=dt.date.today()).model_dump(mode="json"))
    exported = export_content(
        runtime.session_factory(),
        runtime.storage(),
        ExportRequest(requester_id=1, what="own_posts", format="csv"),
        job_id=str(uuid.uuid4()),
        limits=ExportLimits(part_bytes=16 * 1024, timezone="UTC", sheet_rows=1000, max_range_days=31),
    )

    switch("media")
    media_actors.cleanup_orphan_media.fn(**NoArguments().model_dump(mode="json"))

    switch("notifications")
    from nightshift.common.contracts.notifications import EmailRequest

    notification_actors.send_email.fn(
        **EmailRequest(user_id=1, template="welcome", idempotency_key="welcome:1").model_dump(mode="json")
    )

    switch("ops")
    accounts.create_operator(runtime.session_factory(), "grace", "operator", "a long enough passphrase")

    switch("scheduler")
    now = dt.datetime.now(dt.UTC)
    sessions = make_session_factory(make_engine(runtime.settings().database_url))
    with transaction(sessions) as session:
        session.add(
            ScheduleRow(
                name="role-check",
                actor="update_user_statistics",
                queue="users_low",
                cron="0 * * * *",
                timezone="UTC",
                misfire="skip",
                grace_s=60,
                catch_up_window_s=3600,
                overlap="skip",
                handled_through=now,
            )
        )
    with transaction(sessions) as session:
        schedule_control.change(session, "role-check", "pause", by="test")

    with clean_db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM user_stats")).scalar_one() >= 1
        assert connection.execute(text("SELECT count(*) FROM content_analytics")).scalar_one() >= 1
        assert (
            connection.execute(text("SELECT rows FROM exports WHERE id = :id"), {"id": exported.export_id}).scalar_one()
            == 1
        )
        assert connection.execute(text("SELECT count(*) FROM email_deliveries")).scalar_one() == 1
        assert connection.execute(text("SELECT count(*) FROM ops_operators")).scalar_one() == 1
        assert connection.execute(text("SELECT paused FROM schedules WHERE name = 'role-check'")).scalar_one()


def test_ops_purges_expired_data_as_its_role(
    database_url: str, clean_db: Engine, broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    """The real purge, connected as the ops login user: every kind of expired row goes, the young stay."""
    seed_expired_and_young(clean_db, redis_client, broker)
    sessions = make_session_factory(make_engine(login_url(database_url, "ops")))
    actor_rollup.roll_up(sessions, batch_size=10)  # a minute of the old audit and one of the young

    purged = maintenance.purge_expired_data(sessions, broker, [QUEUE], OpsSettings(purge_batch_size=2), now=NOW)

    assert purged == EXPECTED_PURGE
    with clean_db.connect() as connection:
        assert connection.execute(text("SELECT idempotency_key FROM email_deliveries")).scalars().all() == ["young"]
    # Still least privilege: it deleted expired deliveries without being able to read whose they were.
    with (
        psycopg.connect(psycopg_url(login_url(database_url, "ops")), autocommit=True) as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute("SELECT idempotency_key, user_id FROM email_deliveries")


def test_notifications_exports_and_erases_its_gdpr_part_as_its_role(
    database_url: str, clean_db: Engine, broker: NightshiftRedisBroker
) -> None:
    """Every table of ``USER_TABLES`` read, then erased (the suppression kept by digest), as its login user."""
    from nightshift.notifications import gdpr as notifications_gdpr
    from nightshift.notifications.feedback import apply_events
    from nightshift.notifications.preferences import set_preference
    from nightshift.notifications.push.devices import register_device
    from nightshift.notifications.webhooks.endpoints import register_endpoint

    with clean_db.begin() as connection:
        connection.execute(text("INSERT INTO users (id, email, display_name) VALUES (1, 'Ada@example.com', 'Ada')"))
    admin = make_session_factory(clean_db)
    register_device(admin, 1, "fcm", "token-of-ada")
    register_endpoint(admin, 1, "http://127.0.0.1:9/hook", sorted(WEBHOOK_EVENTS)[:1], allow_loopback=True)
    with transaction(admin) as session:
        set_preference(session, 1, "product_news", "email", enabled=True)
    apply_events(admin, [{"event": "bounce", "email": "ada@example.com"}])
    key, month = b"role-test-key", dt.timedelta(days=30)
    with transaction(admin) as session:
        export_id = request_export(session, 1, requested_by="subject", key=key, deadline=month).id
        erasure_id = request_erasure(session, 1, requested_by="subject", key=key, deadline=month)[0].id
    start_parts(admin, export_id, kind="export", broker=broker)
    start_parts(admin, erasure_id, kind="erasure", broker=broker)
    sessions = make_session_factory(make_engine(login_url(database_url, "notifications")))

    exported = notifications_gdpr.export_part(sessions, runtime.storage(), export_id)
    erased = notifications_gdpr.erase_part(sessions, erasure_id, outbox_dir=None)

    expected = {"notification_preferences": 1, "email_suppressions": 1, "push_devices": 1, "webhook_endpoints": 1}
    assert exported is not None and {name: exported.get(name) for name in expected} == expected
    assert erased is not None and {name: erased[name] for name in expected} == expected
    with clean_db.connect() as connection:
        (kept,) = connection.execute(text("SELECT email FROM email_suppressions")).scalars().all()
        assert kept.startswith("sha256:")
        assert connection.execute(text("SELECT count(*) FROM push_devices")).scalar_one() == 0
