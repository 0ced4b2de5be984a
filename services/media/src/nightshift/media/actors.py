"""The media service's actors: parse ids, call the logic."""

from __future__ import annotations

from nightshift.common import runtime
from nightshift.common.contracts import NoArguments, contract_actor
from nightshift.common.contracts import gdpr as gdpr_contracts
from nightshift.common.contracts.gdpr import GdprRequestRef
from nightshift.common.contracts.media import (
    CLEANUP_ORPHAN_MEDIA,
    DELETE_POST_MEDIA,
    PROCESS_MEDIA_UPLOAD,
    MediaRef,
    PostRef,
)
from nightshift.media import gdpr, processing, removal
from nightshift.media.settings import MediaSettings


@contract_actor(PROCESS_MEDIA_UPLOAD)
def process_media_upload(payload: MediaRef) -> None:
    """Validate an upload and produce its variants; a refused upload is recorded, then dead-lettered."""
    settings = runtime.service_settings(MediaSettings)
    processing.process_media_upload(
        runtime.session_factory(),
        runtime.storage(),
        payload.media_id,
        limits=settings.limits(),
        quality=settings.quality(),
    )


@contract_actor(DELETE_POST_MEDIA)
def delete_post_media(payload: PostRef) -> None:
    """Remove a deleted post's originals and variants."""
    removal.delete_post_media(runtime.session_factory(), runtime.storage(), payload.post_id)


@contract_actor(CLEANUP_ORPHAN_MEDIA)
def cleanup_orphan_media(payload: NoArguments) -> None:
    """Remove uploads never attached to a post within the grace period."""
    settings = runtime.service_settings(MediaSettings)
    removal.cleanup_orphan_media(
        runtime.session_factory(),
        runtime.storage(),
        grace=settings.orphan_grace(),
        batch_size=settings.cleanup_batch_size,
    )


@contract_actor(gdpr_contracts.export_part(gdpr.SERVICE))
def gdpr_export_media(payload: GdprRequestRef) -> None:
    """Copy the user's originals and write their rows for a GDPR export."""
    gdpr.export_part(runtime.session_factory(), runtime.storage(), payload.request_id)


@contract_actor(gdpr_contracts.erase_part(gdpr.SERVICE))
def gdpr_erase_media(payload: GdprRequestRef) -> None:
    """Delete every upload of the user: originals, variants and rows."""
    gdpr.erase_part(runtime.session_factory(), runtime.storage(), payload.request_id)
