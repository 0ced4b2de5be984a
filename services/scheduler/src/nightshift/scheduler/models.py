"""The scheduler's tables: schedules with their operator state, and their history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.common.db.models import Base


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
