"""ops: the per-minute and per-hour rollups of the audit trail per actor, and their progress; granted to nightshift_ops

Revision ID: ops_0005_actor_rollup
Revises: ops_0004_purge_grants
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import SchemaItem

from nightshift.common.db.roles import OWN, grant, revoke, service_role

revision = "ops_0005_actor_rollup"
down_revision = "ops_0004_purge_grants"
branch_labels = None
depends_on = None

ROLE = service_role("ops")
#: The ops worker writes both (``roll_up_actor_stats``, ``purge_expired_data``); the web process reads them.
GRANTS = dict.fromkeys(("ops_actor_minutes", "ops_actor_hours", "ops_rollup_progress"), OWN)


def _sums(table: str, period: str) -> list[SchemaItem]:
    """The columns of a rollup of *period*s (both rollups hold the same sums)."""
    return [
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column(period, sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("duration_sum_ms", sa.Float(), nullable=False),
        sa.Column("min_ms", sa.Float(), nullable=False),
        sa.Column("max_ms", sa.Float(), nullable=False),
        sa.Column("buckets", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.PrimaryKeyConstraint("actor", period, name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table("ops_actor_minutes", *_sums("ops_actor_minutes", "minute"))
    op.create_index("ix_ops_actor_minutes_minute", "ops_actor_minutes", ["minute"])
    op.create_table("ops_actor_hours", *_sums("ops_actor_hours", "hour"))
    op.create_index("ix_ops_actor_hours_hour", "ops_actor_hours", ["hour"])
    op.create_table(
        "ops_rollup_progress",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("through_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rescan_from_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ops_rollup_progress")),
    )
    for statement in grant(ROLE, GRANTS):
        op.execute(statement)


def downgrade() -> None:
    for statement in revoke(ROLE, GRANTS):
        op.execute(statement)
    op.drop_table("ops_rollup_progress")
    op.drop_table("ops_actor_hours")
    op.drop_table("ops_actor_minutes")
