"""The event catalog: the contract between publishers and services.

Add an event here with its schema and subscribers; ``publish`` refuses every
name that is not listed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nightshift.common.contracts import Payload, media, notifications, users
from nightshift.common.events.spec import EventSpec, Subscriber


class UserRegistered(Payload):
    user_id: int = Field(gt=0)


class NotificationRequested(Payload):
    user_id: int = Field(gt=0)
    channel: Literal["email"] = "email"
    template: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    idempotency_key: str = Field(min_length=1, max_length=200)
    context_ids: dict[str, int] = Field(default_factory=dict)
    urgency: Literal["high", "critical"] = "high"


class MediaUploaded(Payload):
    media_id: int = Field(gt=0)


class MediaProcessed(Payload):
    media_id: int = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    variants: list[str]


class MediaFailed(Payload):
    media_id: int = Field(gt=0)
    #: A short code: too_large, unsupported_type, too_many_pixels, corrupt, missing.
    reason: str = Field(pattern=r"^[a-z][a-z_]*$", max_length=32)


class PostDeleted(Payload):
    post_id: int = Field(gt=0)


def _email_fields(event: NotificationRequested) -> dict[str, object]:
    return event.model_dump(mode="json", exclude={"channel"})


CATALOG: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec(
            name="user.registered",
            version=1,
            schema=UserRegistered,
            subscribers=(Subscriber(users.SEND_WELCOME_EMAIL),),
            description="A user account was created.",
        ),
        EventSpec(
            name="notification.requested",
            version=1,
            schema=NotificationRequested,
            subscribers=(
                Subscriber(
                    notifications.SEND_EMAIL,
                    when=lambda e: e.channel == "email" and e.urgency == "high",
                    adapt=_email_fields,
                ),
                Subscriber(
                    notifications.SEND_EMAIL_CRITICAL,
                    when=lambda e: e.channel == "email" and e.urgency == "critical",
                    adapt=_email_fields,
                ),
            ),
            description="Some service asks that a user be notified.",
        ),
        EventSpec(
            name="media.uploaded",
            version=1,
            schema=MediaUploaded,
            subscribers=(Subscriber(media.PROCESS_MEDIA_UPLOAD),),
            description="An image was uploaded to storage and its media row created.",
        ),
        EventSpec(
            name="media.processed",
            version=1,
            schema=MediaProcessed,
            subscribers=(),
            description="An upload's variants are stored and recorded on its media row.",
        ),
        EventSpec(
            name="media.failed",
            version=1,
            schema=MediaFailed,
            subscribers=(),
            description="An upload was refused; the media row holds the detailed reason.",
        ),
        EventSpec(
            name="post.deleted",
            version=1,
            schema=PostDeleted,
            subscribers=(Subscriber(media.DELETE_POST_MEDIA),),
            description="A post was deleted; its media go with it.",
        ),
    )
}
