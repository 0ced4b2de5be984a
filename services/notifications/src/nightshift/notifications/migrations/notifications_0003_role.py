"""notifications role: the grants of nightshift_notifications on this branch's tables (docs/security.md)

Revision ID: notifications_0003_role
Revises: notifications_0002
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import OWN, create_role, grant, revoke, service_role

revision = "notifications_0003_role"
down_revision = "notifications_0002"
branch_labels = None
#: The role and its common grants come from the common history.
depends_on = "0006_roles"

ROLE = service_role("notifications")
#: Its delivery logs, devices and webhook endpoints.
GRANTS = {
    "email_deliveries": OWN,
    "bulk_email_deliveries": OWN,
    "push_devices": OWN,
    "push_deliveries": OWN,
    "webhook_endpoints": OWN,
    "webhook_deliveries": OWN,
}


def upgrade() -> None:
    for statement in create_role(ROLE) + grant(ROLE, GRANTS):
        op.execute(statement)


def downgrade() -> None:
    for statement in revoke(ROLE, GRANTS):
        op.execute(statement)
