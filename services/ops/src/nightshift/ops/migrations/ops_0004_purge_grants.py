"""ops role: what purge_expired_data deletes from the common tables (docs/security.md)

``purge_expired_data`` deletes expired job records, audit rows and idempotency keys; the
worker grants let every service read and add them, not delete them. Only ``DELETE`` is
added: the ops role already reads them (the dashboard, the worker grants). The outbox is
deletable by every worker already; the notifications branch grants the delivery log
(``notifications_0004_ops_purge``).

Revision ID: ops_0004_purge_grants
Revises: ops_0003_role
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import service_role

revision = "ops_0004_purge_grants"
down_revision = "ops_0003_role"
branch_labels = None
depends_on = None

ROLE = service_role("ops")
#: The common tables purge_expired_data deletes expired rows from.
PURGED = ("job_records", "task_audit", "processed_keys")


def upgrade() -> None:
    op.execute(f"GRANT DELETE ON TABLE {', '.join(PURGED)} TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE DELETE ON TABLE {', '.join(PURGED)} FROM {ROLE}")
