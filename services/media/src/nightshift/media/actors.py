"""The media service's actors: parse ids, call the logic."""

from __future__ import annotations

import datetime as dt
from functools import cache

from nightshift.common import runtime
from nightshift.common.contracts import contract_actor
from nightshift.common.contracts.media import (
    CLEANUP_ORPHAN_MEDIA,
    DELETE_POST_MEDIA,
    PROCESS_MEDIA_UPLOAD,
    MediaRef,
    PostRef,
)
from nightshift.common.contracts.users import NoArguments
from nightshift.common.settings import CommonSettings, load_settings
from nightshift.common.storage import Storage, storage_from_settings
from nightshift.media import processing, removal
from nightshift.media.images import Quality
from nightshift.media.settings import MediaSettings


@cache
def media_settings() -> MediaSettings:
    return load_settings(MediaSettings)


@cache
def _storage(settings: CommonSettings) -> Storage:
    return storage_from_settings(settings)


def media_storage() -> Storage:
    """The storage of the process's current settings (built once per settings)."""
    return _storage(runtime.settings())


@contract_actor(PROCESS_MEDIA_UPLOAD)
def process_media_upload(payload: MediaRef) -> None:
    """Validate an upload and produce its variants; a refused upload is recorded, then dead-lettered."""
    settings = media_settings()
    processing.process_media_upload(
        runtime.session_factory(),
        media_storage(),
        payload.media_id,
        limits=processing.Limits(max_bytes=settings.max_bytes, max_pixels=settings.max_pixels),
        quality=Quality(jpeg=settings.jpeg_quality, webp=settings.webp_quality, webp_method=settings.webp_method),
    )


@contract_actor(DELETE_POST_MEDIA)
def delete_post_media(payload: PostRef) -> None:
    """Remove a deleted post's originals and variants."""
    removal.delete_post_media(runtime.session_factory(), media_storage(), payload.post_id)


@contract_actor(CLEANUP_ORPHAN_MEDIA)
def cleanup_orphan_media(payload: NoArguments) -> None:
    """Remove uploads never attached to a post within the grace period."""
    settings = media_settings()
    removal.cleanup_orphan_media(
        runtime.session_factory(),
        media_storage(),
        grace=dt.timedelta(hours=settings.orphan_grace_hours),
        batch_size=settings.cleanup_batch_size,
    )
