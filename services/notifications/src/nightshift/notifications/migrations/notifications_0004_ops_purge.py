"""notifications: the ops role may purge expired rows of the email delivery log, and see nothing else of it

``purge_expired_data`` (ops) deletes the ``email_deliveries`` rows past retention: it
needs to delete rows and to read when each was sent (the condition), not who got
which email. Column privileges give it exactly that (docs/security.md).

Revision ID: notifications_0004_ops_purge
Revises: notifications_0003_role
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import create_role, service_role

revision = "notifications_0004_ops_purge"
down_revision = "notifications_0003_role"
branch_labels = None
depends_on = None

ROLE = service_role("ops")
#: What the purge's statement reads: the row's address (``ctid``) and its date.
PURGE_COLUMNS = ("ctid", "sent_at")


def upgrade() -> None:
    # The role may come from the ops branch later: creating it is idempotent.
    for statement in create_role(ROLE):
        op.execute(statement)
    op.execute(f"GRANT SELECT ({', '.join(PURGE_COLUMNS)}), DELETE ON TABLE email_deliveries TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ({', '.join(PURGE_COLUMNS)}), DELETE ON TABLE email_deliveries FROM {ROLE}")  # noqa: S608
