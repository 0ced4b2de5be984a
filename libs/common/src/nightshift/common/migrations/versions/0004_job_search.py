"""job search: a job's trace id and traceback; indexes for the ops dashboard's searches

Revision ID: 0004
Revises: 0003_gdpr
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003_gdpr"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_records", sa.Column("trace_id", sa.String(length=32), nullable=True))
    op.add_column("job_records", sa.Column("traceback", sa.Text(), nullable=True))
    op.create_index("ix_job_records_updated", "job_records", ["updated_at"])
    op.create_index("ix_job_records_queue_updated", "job_records", ["queue", "updated_at"])
    op.create_index(
        "ix_job_records_trace_id", "job_records", ["trace_id"], postgresql_where=sa.text("trace_id IS NOT NULL")
    )
    op.create_index("ix_task_audit_actor_started", "task_audit", ["actor", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_task_audit_actor_started", table_name="task_audit")
    op.drop_index("ix_job_records_trace_id", table_name="job_records")
    op.drop_index("ix_job_records_queue_updated", table_name="job_records")
    op.drop_index("ix_job_records_updated", table_name="job_records")
    op.drop_column("job_records", "traceback")
    op.drop_column("job_records", "trace_id")
