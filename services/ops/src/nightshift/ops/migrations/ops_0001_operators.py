"""ops: operators, sessions, API tokens, audit, idempotency keys

Revision ID: ops_0001
Revises:
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "ops_0001"
down_revision = None
branch_labels = ("ops",)
depends_on = "0001"


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "ops_operators",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        _created_at(),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_ops_operators_name")),
    )
    op.create_table(
        "ops_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["ops_operators.id"],
            name=op.f("fk_ops_sessions_operator_id_ops_operators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_ops_sessions")),
    )
    op.create_index(op.f("ix_ops_sessions_operator_id"), "ops_sessions", ["operator_id"])
    op.create_index(op.f("ix_ops_sessions_expires_at"), "ops_sessions", ["expires_at"])
    op.create_table(
        "ops_api_tokens",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _created_at(),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_ops_api_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ops_api_tokens_token_hash")),
    )
    op.create_table(
        "ops_audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("who", sa.String(length=200), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column(
            "detail", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_audit")),
    )
    op.create_index("ix_ops_audit_at", "ops_audit", ["at"])
    op.create_table(
        "ops_idempotent_requests",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("job_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ops_idempotent_requests")),
    )
    op.create_index(op.f("ix_ops_idempotent_requests_created_at"), "ops_idempotent_requests", ["created_at"])


def downgrade() -> None:
    op.drop_table("ops_idempotent_requests")
    op.drop_table("ops_audit")
    op.drop_table("ops_api_tokens")
    op.drop_table("ops_sessions")
    op.drop_table("ops_operators")
