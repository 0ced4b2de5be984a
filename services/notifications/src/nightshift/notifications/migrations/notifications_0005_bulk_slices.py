"""notifications: bulk email slices and the in-flight states (sending, uncertain) of their recipients

Revision ID: notifications_0005
Revises: notifications_0004_ops_purge
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from nightshift.common.db.roles import OWN, grant, revoke, service_role

revision = "notifications_0005"
down_revision = "notifications_0004_ops_purge"
branch_labels = None
depends_on = None

ROLE = service_role("notifications")
GRANTS = {"bulk_email_slices": OWN}


def upgrade() -> None:
    op.create_table(
        "bulk_email_slices",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column(
            "facts", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_email_slices")),
    )
    op.create_index(op.f("ix_bulk_email_slices_campaign"), "bulk_email_slices", ["campaign"], unique=False)
    op.add_column("bulk_email_deliveries", sa.Column("slice_id", postgresql.UUID(as_uuid=True), nullable=True))
    op.add_column(
        "bulk_email_deliveries", sa.Column("context_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("bulk_email_deliveries", sa.Column("confirmed_by", sa.String(length=16), nullable=True))
    op.add_column(
        "bulk_email_deliveries",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index(
        "ix_bulk_email_deliveries_in_flight",
        "bulk_email_deliveries",
        ["slice_id"],
        unique=False,
        postgresql_where=sa.text("status IN ('sending', 'uncertain')"),
    )
    for statement in grant(ROLE, GRANTS):
        op.execute(statement)


def downgrade() -> None:
    for statement in revoke(ROLE, GRANTS):
        op.execute(statement)
    op.drop_index("ix_bulk_email_deliveries_in_flight", table_name="bulk_email_deliveries")
    for column in ("updated_at", "confirmed_by", "context_ids", "slice_id"):
        op.drop_column("bulk_email_deliveries", column)
    op.drop_index(op.f("ix_bulk_email_slices_campaign"), table_name="bulk_email_slices")
    op.drop_table("bulk_email_slices")
