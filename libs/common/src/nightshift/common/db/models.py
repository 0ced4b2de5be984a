"""The schema: the social app's data that several services read, and the platform's own tables.

Services share these definitions, so a service reads what it needs (a user's
address and locale) without importing another service's code. A table that
only one service writes lives in that service's ``models.py``, on this ``Base``,
with an Alembic branch of its own. Personal data (email, display name) lives
only in tables, never in messages.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint names Alembic can rely on.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --- users ------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(10), server_default="en")
    created_at: Mapped[dt.datetime] = _now()
    last_active_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuthToken(Base):
    """Access and refresh tokens; only a hash of the token is stored."""

    __tablename__ = "auth_tokens"
    __table_args__ = (
        Index("ix_auth_tokens_expires_at", "expires_at"),
        Index("ix_auth_tokens_revoked", "revoked_at", postgresql_where=text("revoked_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = _now()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class UserSession(Base):
    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = _now()
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class UserStats(Base):
    __tablename__ = "user_stats"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    posts_count: Mapped[int] = mapped_column(Integer, server_default="0")
    likes_received: Mapped[int] = mapped_column(Integer, server_default="0")
    comments_received: Mapped[int] = mapped_column(Integer, server_default="0")
    last_activity_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = _now()


# --- posts: the app's content (written by the app; the posts service derives its own tables) --


#: The languages a post may be written in; anything else is stored as NULL (unknown).
POST_LANGUAGES = ("en", "fr")


class Post(Base):
    """A post, as the app writes it. ``language`` is ``en``, ``fr`` or NULL (unknown)."""

    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text, server_default="")
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PostLike(Base):
    __tablename__ = "post_likes"
    __table_args__ = (Index("ix_post_likes_created_at", "created_at"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[dt.datetime] = _now()


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[dt.datetime] = _now()


class Share(Base):
    """A user sharing a post (several times if they like)."""

    __tablename__ = "shares"
    __table_args__ = (Index("ix_shares_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = _now()


# --- platform ----------------------------------------------------------------


class ProcessedKey(Base):
    """Idempotency keys, recorded in the same transaction as their effect."""

    __tablename__ = "processed_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[dt.datetime] = _now()


class OutboxEvent(Base):
    """Events written in the publisher's transaction and relayed once committed."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_unsent", "id", postgresql_where=text("sent_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    aggregate_id: Mapped[str | None] = mapped_column(String(100))
    trace_context: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = _now()
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class JobRecord(Base):
    """The latest known state of one message: the job behind a job id."""

    __tablename__ = "job_records"
    __table_args__ = (
        Index("ix_job_records_status_updated", "status", "updated_at"),
        Index("ix_job_records_actor_updated", "actor", "updated_at"),
    )

    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    trigger: Mapped[str | None] = mapped_column(String(200))
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class TaskAudit(Base):
    """One row per execution attempt: what ran, when, how it ended, who caused it."""

    __tablename__ = "task_audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str | None] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class JobProgressRecord(Base):
    """A job's last reported progress and its result, copied from Redis when the job ends."""

    __tablename__ = "job_progress"

    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    done: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[dt.datetime] = _now()
