"""Contracts of the media service's actors."""

from __future__ import annotations

from pydantic import Field

from nightshift.common.contracts import Contract, NoArguments, Payload
from nightshift.common.lanes import Lane


class MediaRef(Payload):
    media_id: int = Field(gt=0)


class PostRef(Payload):
    post_id: int = Field(gt=0)


#: Decoding and encoding a large photo takes well under a second; two minutes is a hung worker.
PROCESS_MEDIA_UPLOAD = Contract("media", "process_media_upload", Lane.HIGH, MediaRef, options={"time_limit": 120_000})
DELETE_POST_MEDIA = Contract("media", "delete_post_media", Lane.LOW, PostRef)
CLEANUP_ORPHAN_MEDIA = Contract("media", "cleanup_orphan_media", Lane.LOW, NoArguments)
