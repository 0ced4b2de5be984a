"""ops role: the grants of nightshift_ops on this branch's tables (docs/security.md)

Revision ID: ops_0003_role
Revises: ops_0002
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import OWN, create_role, grant, revoke, service_role

revision = "ops_0003_role"
down_revision = "ops_0002"
branch_labels = None
#: The role and its common grants come from the common history.
depends_on = "0006_roles"

ROLE = service_role("ops")
#: Its operators, sessions, API tokens, audit, idempotent requests, alerts, maintenance runs and reports.
GRANTS = dict.fromkeys(
    (
        "ops_operators",
        "ops_sessions",
        "ops_api_tokens",
        "ops_audit",
        "ops_idempotent_requests",
        "ops_alerts",
        "ops_alert_notices",
        "ops_alert_silences",
        "ops_maintenance_runs",
        "ops_reports",
    ),
    OWN,
)


def upgrade() -> None:
    for statement in create_role(ROLE) + grant(ROLE, GRANTS):
        op.execute(statement)


def downgrade() -> None:
    for statement in revoke(ROLE, GRANTS):
        op.execute(statement)
