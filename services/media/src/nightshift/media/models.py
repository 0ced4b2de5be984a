"""The media service's table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.common.db.models import Base

#: The states of an upload.
UPLOADED, PROCESSED, FAILED = "uploaded", "processed", "failed"


class Media(Base):
    """One uploaded image: where its original is, what became of it, where its variants are.

    ``variants`` maps each variant name to its size and, per format, its key and
    byte count: ``{"thumb": {"width": 150, "height": 150, "webp": {"key": …, "bytes": …}, …}}``.
    ``post_id`` is set when the upload is attached to a post; it is not a foreign
    key, so a deleted post still finds its media through ``post.deleted``.
    """

    __tablename__ = "media"
    __table_args__ = (Index("ix_media_orphans", "created_at", postgresql_where=text("post_id IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, index=True)
    post_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    original_key: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), server_default=UPLOADED)
    source_type: Mapped[str | None] = mapped_column(String(8))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    variants: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    failure_code: Mapped[str | None] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def stored_keys(self) -> list[str]:
        """The original's key and every variant's."""
        return [self.original_key, *variant_keys(self.variants)]


def variant_keys(variants: dict[str, Any]) -> list[str]:
    """Every storage key recorded in a ``variants`` column value."""
    return [
        entry["key"]
        for variant in variants.values()
        for entry in variant.values()
        if isinstance(entry, dict) and "key" in entry
    ]
