"""The ops service's tables: operators, their sessions and API tokens, the audit of their actions,
the idempotency keys of ``POST /api/events/…``, alerts (their notices and silences) and the
results of the maintenance jobs (cache statistics, purges, dependency checks, reports) and the
per-minute rollup of the audit trail the Actors page reads.

Secrets are never stored: passwords as argon2id hashes, session and API tokens as
SHA-256 digests (they are long random strings, so a fast digest is enough).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.common.db.models import Base


class Operator(Base):
    """A person who may sign in to the dashboard: a viewer reads, an operator also acts."""

    __tablename__ = "ops_operators"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OperatorSession(Base):
    """A signed-in browser: the cookie holds the token, the row its digest and the CSRF token."""

    __tablename__ = "ops_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("ops_operators.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiToken(Base):
    """A token for the JSON API, scoped to ``read``, ``act`` and/or ``publish``."""

    __tablename__ = "ops_api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OpsAudit(Base):
    """Who did what, from where (dashboard, API or CLI), and when."""

    __tablename__ = "ops_audit"
    __table_args__ = (Index("ix_ops_audit_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    who: Mapped[str] = mapped_column(String(200))
    via: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class IdempotentRequest(Base):
    """An ``Idempotency-Key`` of ``POST /api/events/…`` and the job ids its first request enqueued."""

    __tablename__ = "ops_idempotent_requests"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    event: Mapped[str] = mapped_column(String(100))
    #: SHA-256 of the event name and validated payload: a key reused for another request is refused.
    request_digest: Mapped[str] = mapped_column(String(64))
    job_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)


class Alert(Base):
    """One alert, from firing to resolution: a rule's condition (or an ``ops.alert_raised``) that held.

    At most one active alert per key (a partial unique index): while the condition holds the
    row's ``last_seen_at`` moves and nothing is sent again.
    """

    __tablename__ = "ops_alerts"
    __table_args__ = (
        Index("ix_ops_alerts_active_key", "key", unique=True, postgresql_where=text("resolved_at IS NULL")),
        Index("ix_ops_alerts_fired_at", "fired_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    #: What the alert is about, stable while the condition holds (``backlog:media_high``).
    key: Mapped[str] = mapped_column(String(300))
    #: The rule that fired it (``backlog``, ``stuck_job``…) or ``raised`` for ``ops.alert_raised``.
    rule: Mapped[str] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(String(300))
    #: The evidence: the figures and thresholds when it fired (updated while it holds).
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    fired_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Whether the firing was delivered (False: it fired while silenced).
    notified: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class AlertNotice(Base):
    """An alert's firing or resolution to deliver by email and by webhook, each once."""

    __tablename__ = "ops_alert_notices"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("ops_alerts.id", ondelete="CASCADE"), index=True)
    #: ``fired`` or ``resolved``.
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    email_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AlertSilence(Base):
    """No notice is delivered for alerts whose key starts with ``key`` until ``until`` (audited)."""

    __tablename__ = "ops_alert_silences"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    until: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MaintenanceRun(Base):
    """One run of a maintenance job and what it found or did (a time series per ``kind``).

    ``kind``: ``cache_stats``, ``purge``, ``dependencies``. ``run_key`` makes a run once
    (a redelivered message finds its row and does nothing).
    """

    __tablename__ = "ops_maintenance_runs"
    __table_args__ = (Index("ix_ops_maintenance_runs_kind_at", "kind", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    run_key: Mapped[str] = mapped_column(String(200), unique=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ok: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class Report(Base):
    """A weekly or monthly report: its figures and the HTML emailed to the operators."""

    __tablename__ = "ops_reports"
    __table_args__ = (Index("ix_ops_reports_period_start", "period", "starts_at", unique=True),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB)
    html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    emailed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class _ActorSums:
    """What the actor rollups hold per actor and period (see ``actor_rollup``).

    The durations are a histogram over the fixed log-spaced buckets of ``histogram``,
    stored sparse: ``buckets[i]`` holds ``counts[i]`` attempts.
    """

    actor: Mapped[str] = mapped_column(String(100), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    duration_sum_ms: Mapped[float] = mapped_column(Float)
    min_ms: Mapped[float] = mapped_column(Float)
    max_ms: Mapped[float] = mapped_column(Float)
    buckets: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))
    counts: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class ActorMinute(_ActorSums, Base):
    """One actor's attempts that started in one minute, summed."""

    __tablename__ = "ops_actor_minutes"
    __table_args__ = (Index("ix_ops_actor_minutes_minute", "minute"),)

    minute: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class ActorHour(_ActorSums, Base):
    """One actor's minutes of one hour, summed (so a day's window reads 24 rows, not 1,440)."""

    __tablename__ = "ops_actor_hours"
    __table_args__ = (Index("ix_ops_actor_hours_hour", "hour"),)

    hour: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class RollupProgress(Base):
    """How far a rollup has read its source: every row with ``id <= through_id`` is in it."""

    __tablename__ = "ops_rollup_progress"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    through_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    #: Where the next run starts reading again: rows committed late below ``through_id`` are caught.
    rescan_from_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
