"""Settings of the media service (prefix ``MEDIA_``)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings
from nightshift.media.images import Quality
from nightshift.media.processing import Limits


class MediaSettings(ServiceSettings):
    """What uploads may be, how variants are encoded, and the worker pool's shape."""

    model_config = SettingsConfigDict(env_prefix="MEDIA_")

    #: Uploads larger than this are refused without being read.
    max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    #: Images with more pixels are refused from their header, before decoding (decompression bombs).
    max_pixels: int = Field(default=50_000_000, ge=10_000)
    #: JPEG fallback quality.
    jpeg_quality: int = Field(default=82, ge=1, le=95)
    #: WebP quality.
    webp_quality: int = Field(default=80, ge=1, le=100)
    #: WebP encoder effort: 0 fastest … 6 smallest files; 2 halves the encoding time of 4.
    webp_method: int = Field(default=2, ge=0, le=6)
    #: Uploads not attached to a post this long after their upload are deleted.
    orphan_grace_hours: int = Field(default=24, ge=1)
    #: Media rows removed per transaction by the orphan cleanup.
    cleanup_batch_size: int = Field(default=200, ge=1, le=10_000)
    #: Worker processes of the CPU-bound profile; None means one per CPU.
    processes: int | None = Field(default=None, ge=1, le=256)
    #: Messages each process holds at a time: 1, so no image waits behind another's CPU work.
    prefetch: int = Field(default=1, ge=1, le=100)

    def limits(self) -> Limits:
        """What an upload may be, as the processing takes it."""
        return Limits(max_bytes=self.max_bytes, max_pixels=self.max_pixels)

    def orphan_grace(self) -> dt.timedelta:
        """How long an upload may stay unattached to a post."""
        return dt.timedelta(hours=self.orphan_grace_hours)

    def quality(self) -> Quality:
        """The encoder settings of the variants."""
        return Quality(jpeg=self.jpeg_quality, webp=self.webp_quality, webp_method=self.webp_method)
