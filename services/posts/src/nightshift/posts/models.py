"""The posts service's own tables: what it derives from the app's posts, likes, comments and shares.

The app's content tables (``posts``, ``post_likes``, ``comments``, ``shares``) are in
``nightshift.common.db.models``: the app writes them and other services (users'
statistics, media) read them. The tables here are written by this service only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.common.db.models import Base


class Hashtag(Base):
    """A normalised hashtag (NFKC, case-folded: ``#Café`` and ``#CAFÉ`` are ``café``)."""

    __tablename__ = "hashtags"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tag: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PostHashtag(Base):
    """A post uses a hashtag. Deleting the post deletes its links."""

    __tablename__ = "post_hashtags"
    __table_args__ = (Index("ix_post_hashtags_hashtag_id", "hashtag_id", "post_id"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    hashtag_id: Mapped[int] = mapped_column(ForeignKey("hashtags.id", ondelete="CASCADE"), primary_key=True)


class SearchDocument(Base):
    """A post's full-text document: hashtags weighted A, body B, in the post's language.

    ``config`` is the text search configuration it was built with (``nightshift_en``,
    ``nightshift_fr`` or ``nightshift_simple``, each unaccenting). Deleting the post
    deletes the document in the same transaction. ``reindex_search`` rebuilds this
    table beside the live one and swaps them (see ``nightshift.posts.reindex``).
    """

    __tablename__ = "search_documents"
    __table_args__ = (Index("ix_search_documents_document", "document", postgresql_using="gin"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    config: Mapped[str] = mapped_column(String(32))
    document: Mapped[Any] = mapped_column(TSVECTOR)
    indexed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SearchMaintenance(Base):
    """One run of ``reindex_search`` or ``optimize_search_index``: what it did, and where a rebuild is.

    A rebuild interrupted by a crash is ``running`` with its ``cursor`` (the last
    post id copied); the next run resumes there.
    """

    __tablename__ = "search_maintenance"
    __table_args__ = (
        Index("ix_search_maintenance_running", "kind", unique=True, postgresql_where=text("status = 'running'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    cursor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PostEngagement(Base):
    """A post's engagement counts and score (formula in ``nightshift.posts.engagement``)."""

    __tablename__ = "post_engagement"
    __table_args__ = (Index("ix_post_engagement_score", "score"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    likes: Mapped[int] = mapped_column(Integer)
    comments: Mapped[int] = mapped_column(Integer)
    shares: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Numeric(14, 4))
    as_of: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TrendingHashtag(Base):
    """One place of one hour's trending ranking."""

    __tablename__ = "trending_hashtags"

    hour: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    hashtag_id: Mapped[int] = mapped_column(ForeignKey("hashtags.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float)
    recent_posts: Mapped[int] = mapped_column(Integer)
    recent_use: Mapped[float] = mapped_column(Float)
    baseline_use: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ContentAnalytics(Base):
    """One local day's content figures, and the anomalies found in them."""

    __tablename__ = "content_analytics"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    posts: Mapped[int] = mapped_column(Integer)
    active_authors: Mapped[int] = mapped_column(Integer)
    likes: Mapped[int] = mapped_column(Integer)
    comments: Mapped[int] = mapped_column(Integer)
    shares: Mapped[int] = mapped_column(Integer)
    media_processed: Mapped[int] = mapped_column(Integer)
    top_hashtags: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    anomalies: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    note: Mapped[str | None] = mapped_column(Text)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Export(Base):
    """One requested export: what, for whom, and how far it got.

    ``status``: ``running`` (parts being written; ``upload_id`` is the storage
    upload to resume), ``done`` (the file is under ``storage_key`` until
    ``expires_at``), ``expired`` (removed by the purge), ``abandoned`` (an
    unfinished export nobody resumed).
    """

    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_status_expires_at", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    what: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(16))
    since: Mapped[dt.date | None] = mapped_column(Date)
    until: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    storage_key: Mapped[str] = mapped_column(String(300))
    upload_id: Mapped[str | None] = mapped_column(String(300))
    total_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    #: The first and last post ids of the export, fixed when it starts (None: it has no rows).
    first_id: Mapped[int | None] = mapped_column(BigInteger)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ExportPart(Base):
    """The part log: each part of an export uploaded and where the next one starts.

    ``last_id`` is the last row's key (post id) in the part; a resumed export
    streams from there. ``attempt`` and ``worker_pid`` say which run wrote it.
    """

    __tablename__ = "export_parts"

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    tag: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    worker_pid: Mapped[int] = mapped_column(Integer)
    written_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
