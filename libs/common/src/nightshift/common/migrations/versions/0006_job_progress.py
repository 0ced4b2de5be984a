"""job progress: a job's last reported progress and its result, kept when it ends

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-29 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
# Main has 0003_gdpr, 0004 (job search) and 0005 since this branch was cut: at the merge, make this
# revision follow 0005 (it only needs 0001's job records, so any order works).
down_revision = "0002"
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


def downgrade() -> None:
    op.drop_table("job_progress")
