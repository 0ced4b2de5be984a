"""The event catalog: the contract between publishers and services.

Add an event here with its schema and subscribers; ``publish`` refuses every
name that is not listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field

from nightshift.common.contracts import Payload, media, notifications, ops, posts, users
from nightshift.common.events.spec import EventSpec, Subscriber
from nightshift.common.sealing import SealedStr


class UserRegistered(Payload):
    user_id: int = Field(gt=0)


class NotificationRequested(Payload):
    user_id: int = Field(gt=0)
    channel: Literal["email", "push"] = "email"
    template: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    idempotency_key: str = Field(min_length=1, max_length=200)
    context_ids: dict[str, int] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict, max_length=5)
    urgency: Literal["high", "critical"] = "high"
    category: notifications.Category | None = None


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


class PostCreated(Payload):
    post_id: int = Field(gt=0)


class PostUpdated(Payload):
    post_id: int = Field(gt=0)


class PostDeleted(Payload):
    post_id: int = Field(gt=0)


class ReindexRequested(Payload):
    reason: str = Field(default="requested", min_length=1, max_length=200)


class GdprRequested(Payload):
    #: The ``gdpr_requests`` row, written in the same transaction: the subject is read from there.
    request_id: int = Field(gt=0)


class GdprPartsCompleted(Payload):
    request_id: int = Field(gt=0)
    kind: Literal["export", "erasure"]


class ExportRequested(posts.ExportRequest):
    """A user (or an operator, through their user account) asks for an export; the job id is the answer."""


class AlertRaised(Payload):
    #: Alerts with the same key are sent once (a re-run of the check raises nothing new).
    alert_key: str = Field(min_length=1, max_length=200)
    source: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=50)
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=50)
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = Field(min_length=1, max_length=300)
    facts: dict[str, float | int | str] = Field(default_factory=dict)
    #: An address that also gets the alert by email (an on-call person, the team owning what alerted):
    #: not a user's, so no id can stand for it; personal, so sealed (see ``sealing``).
    notify: SealedStr | None = None


def _post_change(change: str) -> Callable[[Payload], dict[str, object]]:
    """Adapt a ``post.*`` event to the indexer's payload, which says what happened."""

    def adapt(event: Payload) -> dict[str, object]:
        return {**event.model_dump(mode="json"), "change": change}

    return adapt


def _request_ref(event: GdprPartsCompleted) -> dict[str, object]:
    return {"request_id": event.request_id}


def _email_fields(event: NotificationRequested) -> dict[str, object]:
    return event.model_dump(mode="json", exclude={"channel"})


def _push_fields(event: NotificationRequested) -> dict[str, object]:
    return event.model_dump(mode="json", exclude={"channel", "urgency", "links"})


def _webhook(name: str) -> Subscriber:
    """Integration events: fanned out to the webhook endpoints subscribed to *name*."""

    def adapt(event: Payload) -> dict[str, object]:
        return {"event": name, "data": event.model_dump(mode="json")}

    return Subscriber(notifications.DISPATCH_WEBHOOKS, adapt=adapt)


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
                Subscriber(notifications.SEND_PUSH, when=lambda e: e.channel == "push", adapt=_push_fields),
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
            subscribers=(_webhook("media.processed"),),
            description="An upload's variants are stored and recorded on its media row.",
        ),
        EventSpec(
            name="media.failed",
            version=1,
            schema=MediaFailed,
            subscribers=(_webhook("media.failed"),),
            description="An upload was refused; the media row holds the detailed reason.",
        ),
        EventSpec(
            name="post.created",
            version=1,
            schema=PostCreated,
            subscribers=(Subscriber(posts.INDEX_POST, adapt=_post_change("created")), _webhook("post.created")),
            description="A post was written; its hashtags are linked and it becomes searchable.",
        ),
        EventSpec(
            name="post.updated",
            version=1,
            schema=PostUpdated,
            subscribers=(Subscriber(posts.INDEX_POST, adapt=_post_change("updated")),),
            description="A post was edited; its hashtags and search document follow.",
        ),
        EventSpec(
            name="post.deleted",
            version=1,
            schema=PostDeleted,
            subscribers=(
                Subscriber(media.DELETE_POST_MEDIA),
                Subscriber(posts.INDEX_POST, adapt=_post_change("deleted")),
                _webhook("post.deleted"),
            ),
            description="A post was deleted; its media go with it and it leaves the search index.",
        ),
        EventSpec(
            name="posts.reindex_requested",
            version=1,
            schema=ReindexRequested,
            subscribers=(Subscriber(posts.REINDEX_SEARCH),),
            description="Rebuild the whole posts search index beside the live one, then swap.",
        ),
        EventSpec(
            name="gdpr.export_requested",
            version=1,
            schema=GdprRequested,
            subscribers=(Subscriber(users.EXPORT_USER_DATA),),
            description="A user's data is to be exported: every service writes its part, then one archive is emailed.",
        ),
        EventSpec(
            name="gdpr.erasure_requested",
            version=1,
            schema=GdprRequested,
            subscribers=(Subscriber(users.ERASE_USER),),
            description="A user's data is to be erased everywhere: every service erases its part, then the account.",
        ),
        EventSpec(
            name="gdpr.parts_completed",
            version=1,
            schema=GdprPartsCompleted,
            subscribers=(
                Subscriber(users.ASSEMBLE_USER_EXPORT, when=lambda e: e.kind == "export", adapt=_request_ref),
                Subscriber(users.FINISH_USER_ERASURE, when=lambda e: e.kind == "erasure", adapt=_request_ref),
            ),
            description="Every service acknowledged its part of a GDPR request (written with the last part).",
        ),
        EventSpec(
            name="export.requested",
            version=1,
            schema=ExportRequested,
            subscribers=(Subscriber(posts.EXPORT_CONTENT),),
            description=(
                "Export a user's own posts, an author's analytics or an operator's content over a date range, "
                "as CSV (gzip) or XLSX; the requester is emailed an expiring link."
            ),
        ),
        EventSpec(
            name="ops.alert_raised",
            version=1,
            schema=AlertRaised,
            subscribers=(Subscriber(ops.RECORD_RAISED_ALERT),),
            description=(
                "Something needs an operator's attention (e.g. a content anomaly): an alert of the ops "
                "service, emailed to the operators and posted to the alert webhook unless silenced."
            ),
        ),
    )
}

#: The events integrations may subscribe webhook endpoints to.
WEBHOOK_EVENTS = frozenset(
    name
    for name, spec in CATALOG.items()
    if any(subscriber.contract is notifications.DISPATCH_WEBHOOKS for subscriber in spec.subscribers)
)
