"""media role: the grants of nightshift_media on this branch's tables (docs/security.md)

Revision ID: media_0002_role
Revises: media_0001
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import OWN, create_role, grant, revoke, service_role

revision = "media_0002_role"
down_revision = "media_0001"
branch_labels = None
#: The role and its common grants come from the common history.
depends_on = "0006_roles"

ROLE = service_role("media")
#: Its uploads and their variants; the posts service's daily analytics count processed media.
GRANTS = {"media": OWN}


def upgrade() -> None:
    for statement in create_role(ROLE) + grant(ROLE, GRANTS):
        op.execute(statement)
    op.execute("GRANT SELECT ON TABLE media TO nightshift_posts")


def downgrade() -> None:
    op.execute("REVOKE ALL ON TABLE media FROM nightshift_posts")
    for statement in revoke(ROLE, GRANTS):
        op.execute(statement)
