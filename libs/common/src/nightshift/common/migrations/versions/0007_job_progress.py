"""job progress: a job's last reported progress and its result, kept when it ends

Revision ID: 0007
Revises: 0006_roles
Create Date: 2026-11-29 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from nightshift.common.db.roles import WORKER_ROLE, WRITE, grant, revoke

revision = "0007"
down_revision = "0006_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_progress",
        sa.Column("message_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_job_progress")),
    )
    # Every worker's JobProgress middleware writes it.
    for statement in grant(WORKER_ROLE, {"job_progress": WRITE}):
        op.execute(statement)


def downgrade() -> None:
    for statement in revoke(WORKER_ROLE, {"job_progress": WRITE}):
        op.execute(statement)
    op.drop_table("job_progress")
