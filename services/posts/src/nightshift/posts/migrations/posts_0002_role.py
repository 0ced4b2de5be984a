"""posts role: the grants of nightshift_posts on this branch's tables (docs/security.md)

Revision ID: posts_0002_role
Revises: posts_0001
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from alembic import op

from nightshift.common.db.roles import OWN, create_role, grant, revoke, service_role

revision = "posts_0002_role"
down_revision = "posts_0001"
branch_labels = None
#: The role and its common grants come from the common history.
depends_on = "0006_roles"

ROLE = service_role("posts")
#: What it derives from the content: hashtags, search, engagement, trending, analytics.
GRANTS = dict.fromkeys(
    (
        "hashtags",
        "post_hashtags",
        "search_documents",
        "search_maintenance",
        "post_engagement",
        "trending_hashtags",
        "content_analytics",
    ),
    OWN,
)


def upgrade() -> None:
    for statement in create_role(ROLE) + grant(ROLE, GRANTS):
        op.execute(statement)
    # The daily analytics count processed media when the media service is installed
    # (media_0002_role grants it too, whichever branch runs first).
    op.execute(
        "DO $$ BEGIN IF to_regclass('public.media') IS NOT NULL THEN "
        "GRANT SELECT ON TABLE media TO nightshift_posts; END IF; END $$"
    )


def downgrade() -> None:
    for statement in revoke(ROLE, GRANTS):
        op.execute(statement)
