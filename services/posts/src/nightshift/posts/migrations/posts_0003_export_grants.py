"""posts: one head again, and nightshift_posts may run its exports (docs/security.md)

``posts_0002_exports`` and ``posts_0002_role`` both followed ``posts_0001``: the role was made
without the exports' tables, so a posts worker logged in as its role could not record an export.

Revision ID: posts_0003
Revises: posts_0002, posts_0002_role
Create Date: 2026-11-29 21:45:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import OWN, grant, revoke, service_role

revision = "posts_0003"
down_revision = ("posts_0002", "posts_0002_role")
branch_labels = None
depends_on = None

ROLE = service_role("posts")
#: The export log and its part log (the rows exported are read under the role's other grants).
GRANTS = dict.fromkeys(("exports", "export_parts"), OWN)


def upgrade() -> None:
    for statement in grant(ROLE, GRANTS):
        op.execute(statement)


def downgrade() -> None:
    for statement in revoke(ROLE, GRANTS):
        op.execute(statement)
