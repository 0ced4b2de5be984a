"""ops: alerts, their notices and silences, maintenance runs, reports

Revision ID: ops_0002
Revises: ops_0001
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "ops_0002"
down_revision = "ops_0001"
branch_labels = None
depends_on = None


def _at(name: str, *, nullable: bool = False, now: bool = True) -> sa.Column[object]:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), server_default=default, nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(
        name, postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "ops_alerts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=50), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        _json("facts"),
        _at("fired_at"),
        _at("last_seen_at"),
        _at("resolved_at", nullable=True, now=False),
        sa.Column("notified", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_alerts")),
    )
    op.create_index(
        "ix_ops_alerts_active_key", "ops_alerts", ["key"], unique=True, postgresql_where=sa.text("resolved_at IS NULL")
    )
    op.create_index("ix_ops_alerts_fired_at", "ops_alerts", ["fired_at"])
    op.create_table(
        "ops_alert_notices",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _at("created_at"),
        _at("email_sent_at", nullable=True, now=False),
        _at("webhook_sent_at", nullable=True, now=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["ops_alerts.id"], name=op.f("fk_ops_alert_notices_alert_id_ops_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_alert_notices")),
    )
    op.create_index(op.f("ix_ops_alert_notices_alert_id"), "ops_alert_notices", ["alert_id"])
    op.create_table(
        "ops_alert_silences",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        _at("until", now=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_alert_silences")),
    )
    op.create_index(op.f("ix_ops_alert_silences_key"), "ops_alert_silences", ["key"])
    op.create_table(
        "ops_maintenance_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("run_key", sa.String(length=200), nullable=False),
        _at("at"),
        sa.Column("ok", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _json("result"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_maintenance_runs")),
        sa.UniqueConstraint("run_key", name=op.f("uq_ops_maintenance_runs_run_key")),
    )
    op.create_index("ix_ops_maintenance_runs_kind_at", "ops_maintenance_runs", ["kind", "at"])
    op.create_table(
        "ops_reports",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        _at("starts_at", now=False),
        _at("ends_at", now=False),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        _at("created_at"),
        _at("emailed_at", nullable=True, now=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_reports")),
    )
    op.create_index("ix_ops_reports_period_start", "ops_reports", ["period", "starts_at"], unique=True)


def downgrade() -> None:
    for table in ("ops_reports", "ops_maintenance_runs", "ops_alert_silences", "ops_alert_notices", "ops_alerts"):
        op.drop_table(table)
