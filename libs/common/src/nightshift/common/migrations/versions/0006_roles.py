"""roles: one per service with its grants on the common tables, the workers' common grants, the schema's owner

Least privilege (docs/security.md). The services' own tables are granted by their
own branches (``<service>_0002_role``); the tables here are the common history's.

Revision ID: 0006_roles
Revises: 0005
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import (
    APPEND,
    MIGRATIONS_ROLE,
    OWN,
    READ,
    WORKER_ROLE,
    WRITE,
    create_role,
    grant,
    revoke,
    service_role,
)

revision = "0006_roles"
down_revision = "0005"
branch_labels = None
#: The schedules tables live on a branch of the common history: grant on them too.
depends_on = "scheduler_0001"

#: What every worker process writes, whatever its service: records and audit (the
#: record writer), the outbox (publish_in_transaction, the relay, GDPR scrubbing),
#: idempotency keys (claim) and the GDPR workflow (each service acknowledges its part).
WORKER_GRANTS = {
    "job_records": WRITE,
    "task_audit": APPEND,
    "outbox_events": (*WRITE, "DELETE"),
    "processed_keys": APPEND,
    "gdpr_requests": WRITE,
    "gdpr_parts": WRITE,
}

#: What each service does to the common history's tables, beyond ``WORKER_GRANTS``.
SERVICE_GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    # Accounts, sessions, tokens and statistics; reads the content to count it; erases a
    # user's idempotency keys (GDPR).
    "users": {
        "users": OWN,
        "auth_tokens": OWN,
        "user_sessions": OWN,
        "user_stats": OWN,
        "posts": READ,
        "post_likes": READ,
        "comments": READ,
        "shares": READ,
        "processed_keys": (*APPEND, "DELETE"),
    },
    # The content: indexes, cleans up and erases it; reads authors.
    # The digest reads who opted out and which addresses are suppressed.
    "posts": {
        "posts": OWN,
        "post_likes": OWN,
        "comments": OWN,
        "shares": OWN,
        "users": READ,
        "notification_preferences": READ,
        "email_suppressions": READ,
    },
    # Only its own table (media_0002_role).
    "media": {},
    # Reads the recipient's address and name; keeps preferences and suppressions (unsubscribes, bounces).
    "notifications": {"users": READ, "notification_preferences": OWN, "email_suppressions": OWN},
    # Declares schedules and records their firings.
    "scheduler": {"schedules": WRITE, "schedule_events": APPEND},
    # Operators change schedules; the dashboard reads the audit (job records via the worker grants).
    "ops": {"schedules": WRITE, "schedule_events": APPEND},
}


def upgrade() -> None:
    for statement in create_role(WORKER_ROLE) + grant(WORKER_ROLE, WORKER_GRANTS):
        op.execute(statement)
    for service, grants in SERVICE_GRANTS.items():
        role = service_role(service)
        for statement in create_role(role, member_of=(WORKER_ROLE,)) + grant(role, grants):
            op.execute(statement)
    for statement in create_role(MIGRATIONS_ROLE):
        op.execute(statement)
    # The owner may create and alter: every existing table and sequence becomes its own,
    # when whoever runs this may give them (a superuser, or a member of the role).
    op.execute(
        f"DO $$ DECLARE item record; BEGIN "  # noqa: S608 - a constant role name
        f"IF pg_has_role(current_user, '{MIGRATIONS_ROLE}', 'MEMBER') THEN "
        f"EXECUTE 'GRANT USAGE, CREATE ON SCHEMA public TO {MIGRATIONS_ROLE}'; "
        f"FOR item IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') LOOP "
        f"EXECUTE 'ALTER TABLE public.' || quote_ident(item.relname) || ' OWNER TO {MIGRATIONS_ROLE}'; "
        f"END LOOP; END IF; END $$"
    )


def downgrade() -> None:
    # Roles belong to the whole cluster (other databases may use them): only the grants go.
    for service, grants in SERVICE_GRANTS.items():
        if grants:
            for statement in revoke(service_role(service), grants):
                op.execute(statement)
    for statement in revoke(WORKER_ROLE, WORKER_GRANTS):
        op.execute(statement)
