"""The notifications service's tables: delivery logs, push devices and webhook endpoints.

Preferences and suppressions are read by posts' digest too, so they live in
``nightshift.common.db.models``; everything here is written and read by this
service only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.common.db.models import Base


class EmailDelivery(Base):
    """One row per email handed to the provider; the idempotency key makes it once."""

    __tablename__ = "email_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(10))
    backend: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BulkEmailDelivery(Base):
    """What became of one recipient of one campaign: sent, skipped and why, or in flight. Once per pair."""

    __tablename__ = "bulk_email_deliveries"

    campaign: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: ``sending`` (its request is being made), ``uncertain`` (its request was in flight when the
    #: sender died: maybe sent), ``sent``, ``unsubscribed``, ``suppressed`` or ``missing`` (no such user).
    status: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(10))
    backend: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(64))
    #: The slice (one provider request) it was sent in; None for the skipped.
    slice_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    #: The recipient's ``context_ids`` while in flight (a resend needs them); cleared once sent.
    context_ids: Mapped[dict[str, list[int]] | None] = mapped_column(JSONB)
    #: How ``sent`` was known: ``response`` (the provider answered) or ``event`` (its event webhook).
    confirmed_by: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BulkEmailSlice(Base):
    """One provider request of a campaign: what a resend of its recipients needs, and when it was made."""

    __tablename__ = "bulk_email_slices"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(100), index=True)
    template: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    recipients: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(64))
    #: Committed before the request: the start of the grace period of its uncertain recipients.
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: When its recipients still uncertain after the grace period were reported to the operators.
    alerted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PushDevice(Base):
    """A device registered for push: an FCM registration token, or a Web Push subscription."""

    __tablename__ = "push_devices"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: ``fcm`` (Android, iOS through Firebase) or ``webpush`` (browsers).
    platform: Mapped[str] = mapped_column(String(16))
    #: The FCM registration token, or the Web Push subscription's endpoint URL.
    token: Mapped[str] = mapped_column(Text, unique=True)
    #: Web Push only: the subscription's public key and authentication secret (base64url).
    p256dh: Mapped[str | None] = mapped_column(String(200))
    auth: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PushDelivery(Base):
    """One push to one device for one idempotency key; a retried message skips the devices done."""

    __tablename__ = "push_deliveries"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    device_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: ``sent`` or ``removed`` (the provider declared the token dead).
    status: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookEndpoint(Base):
    """An integration's endpoint: where to POST which events, and the secrets that sign them.

    Two secrets are valid during a rotation: the new ``secret`` and the
    ``previous_secret`` until ``previous_expires_at``; deliveries are signed with both.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    #: When the current run of failures began (None while deliveries succeed).
    failing_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDeliveryLog(Base):
    """One event to one endpoint: attempts and outcome (``delivered``, ``failing``, ``dropped``)."""

    __tablename__ = "webhook_deliveries"

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
