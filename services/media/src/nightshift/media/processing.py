"""Processing an upload: read the original, render the variants, store and record them.

The slow part (reading, decoding, encoding, writing objects) runs outside any
database transaction; the outcome is recorded in one short transaction that
also writes ``media.processed`` or ``media.failed`` to the outbox. Variant keys
depend only on the media id and the variant, so processing again overwrites
the same objects and never leaves duplicates.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.errors import NotFound
from nightshift.common.outbox import publish_in_transaction
from nightshift.common.storage import Storage
from nightshift.media.errors import MediaRejected
from nightshift.media.images import EncodedVariant, Quality, Rendering, render_variants
from nightshift.media.models import FAILED, PROCESSED, Media, variant_keys

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What an upload may be.

    Parameters:
      max_bytes: Largest original accepted.
      max_pixels: Largest pixel count accepted (checked before decoding).
    """

    max_bytes: int
    max_pixels: int


def variant_key(media_id: int, variant: EncodedVariant) -> str:
    """Where a variant is stored: ``media/<id>/<name>.<ext>``, the same on every run."""
    return f"media/{media_id}/{variant.name}.{variant.extension}"


def process_media_upload(
    sessions: sessionmaker[Session], storage: Storage, media_id: int, *, limits: Limits, quality: Quality
) -> Rendering:
    """Turn upload *media_id* into its variants and record them.

    Returns:
      What was rendered.

    Raises:
      NotFound: There is no such media row.
      MediaRejected: The upload is refused; the row was marked failed and
        ``media.failed`` recorded before this is raised.
    """
    with sessions() as session:
        media = session.get(Media, media_id)
        if media is None:
            raise NotFound(f"media {media_id} does not exist")
        original_key = media.original_key
    try:
        data = _read_original(storage, original_key, limits.max_bytes)
        rendering = render_variants(data, max_pixels=limits.max_pixels, quality=quality)
    except MediaRejected as rejection:
        record_failure(sessions, media_id, rejection)
        raise
    variants: dict[str, Any] = {}
    for variant in rendering.variants:
        key = variant_key(media_id, variant)
        storage.put(key, variant.data, content_type=variant.content_type)
        entry = variants.setdefault(variant.name, {"width": variant.width, "height": variant.height})
        entry[variant.format] = {"key": key, "bytes": len(variant.data)}
    _record_success(sessions, storage, media_id, rendering, len(data), variants)
    return rendering


def _read_original(storage: Storage, key: str, max_bytes: int) -> bytes:
    """The original's bytes, refused by size before they are read.

    Raises:
      MediaRejected: ``missing`` or ``too_large``.
    """
    try:
        size = storage.size(key)
        if size > max_bytes:
            raise MediaRejected("too_large", f"{size} bytes, over the {max_bytes} byte limit")
        data = storage.get(key)
    except NotFound:
        raise MediaRejected("missing", f"no original at {key!r}") from None
    if len(data) > max_bytes:  # replaced by a larger file since it was measured
        raise MediaRejected("too_large", f"{len(data)} bytes, over the {max_bytes} byte limit")
    return data


def _record_success(
    sessions: sessionmaker[Session],
    storage: Storage,
    media_id: int,
    rendering: Rendering,
    original_bytes: int,
    variants: dict[str, Any],
) -> None:
    with transaction(sessions) as session:
        media = session.get(Media, media_id, with_for_update=True)
        if media is None:  # deleted while we worked: take the variants back
            storage.delete_many(variant_keys(variants))
            logger.info("Media %s was deleted while being processed; its variants were removed.", media_id)
            return
        first_time = media.status != PROCESSED
        media.status = PROCESSED
        media.source_type = rendering.source_type
        media.width, media.height = rendering.width, rendering.height
        media.bytes = original_bytes
        media.variants = variants
        media.failure_code = media.failure_reason = None
        media.processed_at = dt.datetime.now(dt.UTC)
        if first_time:
            publish_in_transaction(
                session,
                "media.processed",
                {
                    "media_id": media_id,
                    "width": rendering.width,
                    "height": rendering.height,
                    "variants": sorted(variants),
                },
                aggregate_id=f"media:{media_id}",
            )


def record_failure(sessions: sessionmaker[Session], media_id: int, rejection: MediaRejected) -> bool:
    """Mark *media_id* failed with *rejection*'s reason and record ``media.failed``, once.

    Returns:
      True if the row changed now, False if it already held this failure (a redelivery).
    """
    with transaction(sessions) as session:
        media = session.get(Media, media_id, with_for_update=True)
        if media is None or (media.status == FAILED and media.failure_code == rejection.code):
            return False
        media.status = FAILED
        media.failure_code = rejection.code
        media.failure_reason = rejection.detail
        media.processed_at = dt.datetime.now(dt.UTC)
        publish_in_transaction(
            session,
            "media.failed",
            {"media_id": media_id, "reason": rejection.code},
            aggregate_id=f"media:{media_id}",
        )
        return True
