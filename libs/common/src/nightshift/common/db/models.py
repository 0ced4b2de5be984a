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
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
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


# --- notification preferences and suppressions (notifications writes them; posts' digest reads them) --

#: Categories of notifications a user may choose about; ``security`` cannot be turned off.
NOTIFICATION_CATEGORIES = ("digest", "product_news", "security")
#: Channels a preference applies to.
NOTIFICATION_CHANNELS = ("email", "push")
#: Whether a category is on when the user never chose (opt-in for product news).
DEFAULT_PREFERENCES = {"digest": True, "product_news": False, "security": True}


class NotificationPreference(Base):
    """A user's choice for one category on one channel; no row means ``DEFAULT_PREFERENCES``."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    #: Where the choice was made: ``settings``, ``one_click`` (RFC 8058), ``provider`` (an unsubscribe event).
    source: Mapped[str] = mapped_column(String(32), server_default="settings")
    updated_at: Mapped[dt.datetime] = _now()


class EmailSuppression(Base):
    """An address no email may be sent to (bounced, dropped, reported as spam), lowercased.

    The suppression of an erased user's address is kept under the address's digest
    (:func:`suppression_digest_sql`) instead of the address: it still stops mail to that
    address (a new account with it) without the address being stored.
    """

    __tablename__ = "email_suppressions"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = _now()


def suppression_digest_sql(address: str) -> str:
    """SQL of the digest a suppression is kept under once its user is erased.

    ``sha256:`` and the hex SHA-256 of the lowercased address (*address*: an SQL
    expression, ``u.email``). Unkeyed on purpose: every service checking
    suppressions computes it in SQL, and no key rotation can make it stop matching.
    """
    return f"'sha256:' || encode(sha256(convert_to(lower({address}), 'UTF8')), 'hex')"


def suppressed_sql(address: str) -> str:
    """SQL condition: the address *address* (an SQL expression) is suppressed, plainly or by its digest."""
    return (
        "EXISTS (SELECT 1 FROM email_suppressions s "  # noqa: S608 - SQL expressions from the code
        f"WHERE s.email IN (lower({address}), {suppression_digest_sql(address)}))"
    )


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
        Index("ix_job_records_updated", "updated_at"),
        Index("ix_job_records_queue_updated", "queue", "updated_at"),
        Index("ix_job_records_trace_id", "trace_id", postgresql_where=text("trace_id IS NOT NULL")),
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
    #: The W3C trace the message belongs to (32 hex digits), to find it in Jaeger.
    trace_id: Mapped[str | None] = mapped_column(String(32))
    #: The traceback of the last failed attempt.
    traceback: Mapped[str | None] = mapped_column(Text)


class TaskAudit(Base):
    """One row per execution attempt: what ran, when, how it ended, who caused it."""

    __tablename__ = "task_audit"
    __table_args__ = (Index("ix_task_audit_actor_started", "actor", "started_at"),)

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


# --- schedules (fired by the scheduler, changed by operators from the CLI or ops) --


class ScheduleRow(Base):
    """One schedule: what the code declares, what operators changed, and where firing is.

    The declared columns are rewritten from the code by the active scheduler; the
    operator columns (``cron_override``, ``paused``, ``changed_*``) are only written
    by ``nightshift schedule …``, so they survive restarts and redeploys.
    """

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Declared in code.
    actor: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    misfire: Mapped[str] = mapped_column(String(16))
    grace_s: Mapped[int] = mapped_column(Integer)
    catch_up_window_s: Mapped[int] = mapped_column(Integer)
    overlap: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, server_default="")
    declared: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Operators' changes.
    cron_override: Mapped[str | None] = mapped_column(String(100))
    paused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    changed_by: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    change: Mapped[str | None] = mapped_column(String(200))
    # Firing state, written by the active scheduler under its fencing token.
    handled_through: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_fire_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    last_enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    fencing_token: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def effective_cron(self) -> str:
        return self.cron_override or self.cron


class ScheduleEvent(Base):
    """Something that happened to a schedule: an operator's change or a dropped fire."""

    __tablename__ = "schedule_events"
    __table_args__ = (Index("ix_schedule_events_schedule_at", "schedule", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(100))
    #: pause, resume, set_cron, run_now, misfire_skipped, overlap_skipped.
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, server_default="")
    #: Scheduled times a skip covers (both None for an operator's change).
    first_fire_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_fire_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- GDPR: requests and their per-service parts (written by every service taking part) ---


class GdprRequest(Base):
    """One export or erasure of a user's data: who asked, when, and where it stands.

    ``user_id`` is the subject while the request is open; an erasure sets it to NULL on
    every request of the subject when it completes, leaving ``subject_digest`` (a keyed
    hash of the id) so that asking again is recognised without keeping the id.
    ``requested_by`` is the operator or ``subject`` (the user asked), never the user's data.
    ``summary`` is the completion record: each service's acknowledgement with its counts and time.
    """

    __tablename__ = "gdpr_requests"
    __table_args__ = (
        Index("ix_gdpr_requests_subject", "subject_digest", "kind"),
        Index("ix_gdpr_requests_open", "deadline_at", postgresql_where=text("status <> 'done'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    subject_digest: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = _now()
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    deadline_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    overdue_alerted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    archive_key: Mapped[str | None] = mapped_column(String(1024))
    link_url: Mapped[str | None] = mapped_column(Text)
    link_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class GdprPart(Base):
    """One service's part of a request: ``pending`` until the service acknowledges it with its counts."""

    __tablename__ = "gdpr_parts"
    __table_args__ = (PrimaryKeyConstraint("request_id", "service"),)

    request_id: Mapped[int] = mapped_column(ForeignKey("gdpr_requests.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = _now()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class JobProgressRecord(Base):
    """A job's last reported progress and its result, copied from Redis when the job ends."""

    __tablename__ = "job_progress"

    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    done: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[dt.datetime] = _now()
