"""post content: a post's language and last edit, shares, and the indexes by time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("posts", sa.Column("language", sa.String(length=8), nullable=True))
    op.add_column("posts", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_posts_created_at", "posts", ["created_at"], unique=False)
    op.create_index("ix_post_likes_created_at", "post_likes", ["created_at"], unique=False)
    op.create_index("ix_comments_created_at", "comments", ["created_at"], unique=False)
    op.create_table(
        "shares",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name=op.f("fk_shares_post_id_posts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_shares_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
    )
    op.create_index(op.f("ix_shares_post_id"), "shares", ["post_id"], unique=False)
    op.create_index(op.f("ix_shares_user_id"), "shares", ["user_id"], unique=False)
    op.create_index("ix_shares_created_at", "shares", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shares_created_at", table_name="shares")
    op.drop_index(op.f("ix_shares_user_id"), table_name="shares")
    op.drop_index(op.f("ix_shares_post_id"), table_name="shares")
    op.drop_table("shares")
    op.drop_index("ix_comments_created_at", table_name="comments")
    op.drop_index("ix_post_likes_created_at", table_name="post_likes")
    op.drop_index("ix_posts_created_at", table_name="posts")
    op.drop_column("posts", "updated_at")
    op.drop_column("posts", "language")
