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


def _event(
    name: str, schema: type[Payload], description: str, *subscribers: Subscriber, webhook: bool = False
) -> EventSpec:
    """An event at version 1 (every event's so far).

    Parameters:
      subscribers: The actors it is delivered to, in this order.
      webhook: Integrations may subscribe to it: the webhook dispatcher comes last.
    """
    if webhook:
        subscribers = (*subscribers, _webhook(name))
    return EventSpec(name=name, version=1, schema=schema, subscribers=subscribers, description=description)


def _indexes(change: str) -> Subscriber:
    """The posts indexer, told which *change* of a post the event is."""
    return Subscriber(posts.INDEX_POST, adapt=_post_change(change))


CATALOG: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        _event("user.registered", UserRegistered, "A user account was created.", Subscriber(users.SEND_WELCOME_EMAIL)),
        _event(
            "notification.requested",
            NotificationRequested,
            "Some service asks that a user be notified.",
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
        _event(
            "media.uploaded",
            MediaUploaded,
            "An image was uploaded to storage and its media row created.",
            Subscriber(media.PROCESS_MEDIA_UPLOAD),
        ),
        _event(
            "media.processed",
            MediaProcessed,
            "An upload's variants are stored and recorded on its media row.",
            webhook=True,
        ),
        _event(
            "media.failed",
            MediaFailed,
            "An upload was refused; the media row holds the detailed reason.",
            webhook=True,
        ),
        _event(
            "post.created",
            PostCreated,
            "A post was written; its hashtags are linked and it becomes searchable.",
            _indexes("created"),
            webhook=True,
        ),
        _event(
            "post.updated",
            PostUpdated,
            "A post was edited; its hashtags and search document follow.",
            _indexes("updated"),
        ),
        _event(
            "post.deleted",
            PostDeleted,
            "A post was deleted; its media go with it and it leaves the search index.",
            Subscriber(media.DELETE_POST_MEDIA),
            _indexes("deleted"),
            webhook=True,
        ),
        _event(
            "posts.reindex_requested",
            ReindexRequested,
            "Rebuild the whole posts search index beside the live one, then swap.",
            Subscriber(posts.REINDEX_SEARCH),
        ),
        _event(
            "gdpr.export_requested",
            GdprRequested,
            "A user's data is to be exported: every service writes its part, then one archive is emailed.",
            Subscriber(users.EXPORT_USER_DATA),
        ),
        _event(
            "gdpr.erasure_requested",
            GdprRequested,
            "A user's data is to be erased everywhere: every service erases its part, then the account.",
            Subscriber(users.ERASE_USER),
        ),
        _event(
            "gdpr.parts_completed",
            GdprPartsCompleted,
            "Every service acknowledged its part of a GDPR request (written with the last part).",
            Subscriber(users.ASSEMBLE_USER_EXPORT, when=lambda e: e.kind == "export", adapt=_request_ref),
            Subscriber(users.FINISH_USER_ERASURE, when=lambda e: e.kind == "erasure", adapt=_request_ref),
        ),
        _event(
            "export.requested",
            ExportRequested,
            "Export a user's own posts, an author's analytics or an operator's content over a date range, "
            "as CSV (gzip) or XLSX; the requester is emailed an expiring link.",
            Subscriber(posts.EXPORT_CONTENT),
        ),
        _event(
            "ops.alert_raised",
            AlertRaised,
            "Something needs an operator's attention (e.g. a content anomaly): an alert of the ops "
            "service, emailed to the operators and posted to the alert webhook unless silenced.",
            Subscriber(ops.RECORD_RAISED_ALERT),
        ),
    )
}

#: The events integrations may subscribe webhook endpoints to.
WEBHOOK_EVENTS = frozenset(
    name
    for name, spec in CATALOG.items()
    if any(subscriber.contract is notifications.DISPATCH_WEBHOOKS for subscriber in spec.subscribers)
)
