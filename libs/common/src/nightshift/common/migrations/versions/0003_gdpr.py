"""gdpr: export and erasure requests and their per-service parts

Revision ID: 0003_gdpr
Revises: 0002
Create Date: 2026-11-29 18:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_gdpr"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gdpr_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("subject_digest", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archive_key", sa.String(length=1024), nullable=True),
        sa.Column("link_url", sa.Text(), nullable=True),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "summary", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gdpr_requests")),
    )
    op.create_index("ix_gdpr_requests_subject", "gdpr_requests", ["subject_digest", "kind"], unique=False)
    op.create_index(
        "ix_gdpr_requests_open",
        "gdpr_requests",
        ["deadline_at"],
        unique=False,
        postgresql_where=sa.text("status <> 'done'"),
    )
    op.create_table(
        "gdpr_parts",
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("service", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column(
            "counts", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["gdpr_requests.id"],
            name=op.f("fk_gdpr_parts_request_id_gdpr_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "service", name=op.f("pk_gdpr_parts")),
    )


def downgrade() -> None:
    op.drop_table("gdpr_parts")
    op.drop_index("ix_gdpr_requests_open", table_name="gdpr_requests", postgresql_where=sa.text("status <> 'done'"))
    op.drop_index("ix_gdpr_requests_subject", table_name="gdpr_requests")
    op.drop_table("gdpr_requests")
