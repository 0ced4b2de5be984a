"""posts: hashtags, search documents and their configurations, engagement, trending, analytics

Revision ID: posts_0001
Revises:
Create Date: 2026-11-22 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "posts_0001"
down_revision = None
branch_labels = ("posts",)
depends_on = "0002"

#: The unaccenting text search configurations: name -> (copied configuration, stemmer).
CONFIGURATIONS = {
    "nightshift_en": ("english", "english_stem"),
    "nightshift_fr": ("french", "french_stem"),
    "nightshift_simple": ("simple", "simple"),
}


def upgrade() -> None:
    # unaccent is a trusted extension: the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    for name, (source, stemmer) in CONFIGURATIONS.items():
        op.execute(f"CREATE TEXT SEARCH CONFIGURATION {name} (COPY = {source})")
        op.execute(
            f"ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING FOR hword, hword_part, word WITH unaccent, {stemmer}"
        )
    op.create_table(
        "hashtags",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hashtags")),
        sa.UniqueConstraint("tag", name=op.f("uq_hashtags_tag")),
    )
    op.create_table(
        "post_hashtags",
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("hashtag_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hashtag_id"], ["hashtags.id"], name=op.f("fk_post_hashtags_hashtag_id_hashtags"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_hashtags_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", "hashtag_id", name=op.f("pk_post_hashtags")),
    )
    op.create_index("ix_post_hashtags_hashtag_id", "post_hashtags", ["hashtag_id", "post_id"], unique=False)
    op.create_table(
        "search_documents",
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("config", sa.String(length=32), nullable=False),
        sa.Column("document", postgresql.TSVECTOR(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_search_documents_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_search_documents")),
    )
    op.create_index(
        "ix_search_documents_document", "search_documents", ["document"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "search_maintenance",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "details", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_maintenance")),
    )
    op.create_index(
        "ix_search_maintenance_running",
        "search_maintenance",
        ["kind"],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "post_engagement",
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("likes", sa.Integer(), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.Column("shares", sa.Integer(), nullable=False),
        sa.Column("score", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_engagement_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_post_engagement")),
    )
    op.create_index("ix_post_engagement_score", "post_engagement", ["score"], unique=False)
    op.create_table(
        "trending_hashtags",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("hashtag_id", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("recent_posts", sa.Integer(), nullable=False),
        sa.Column("recent_use", sa.Float(), nullable=False),
        sa.Column("baseline_use", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["hashtag_id"], ["hashtags.id"], name=op.f("fk_trending_hashtags_hashtag_id_hashtags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("hour", "rank", name=op.f("pk_trending_hashtags")),
    )
    op.create_table(
        "content_analytics",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.Column("active_authors", sa.Integer(), nullable=False),
        sa.Column("likes", sa.Integer(), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.Column("shares", sa.Integer(), nullable=False),
        sa.Column("media_processed", sa.Integer(), nullable=False),
        sa.Column(
            "top_hashtags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "anomalies", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_content_analytics")),
    )


def downgrade() -> None:
    op.drop_table("content_analytics")
    op.drop_table("trending_hashtags")
    op.drop_index("ix_post_engagement_score", table_name="post_engagement")
    op.drop_table("post_engagement")
    op.drop_index("ix_search_maintenance_running", table_name="search_maintenance")
    op.drop_table("search_maintenance")
    op.execute("DROP TABLE IF EXISTS search_documents_rebuild")
    op.drop_index("ix_search_documents_document", table_name="search_documents")
    op.drop_table("search_documents")
    op.drop_index("ix_post_hashtags_hashtag_id", table_name="post_hashtags")
    op.drop_table("post_hashtags")
    op.drop_table("hashtags")
    for name in CONFIGURATIONS:
        op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {name}")
