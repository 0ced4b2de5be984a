"""``send_push``: one notification to every device of a user, once per device and idempotency key.

Each device is one transaction: a row in ``push_deliveries`` is written with the
provider's answer, so a message retried after a failure pushes only to the
devices not done yet. A token the provider declares dead (``UNREGISTERED``, 404,
410) is removed. A retryable failure (429, 5xx, no connection) of any device is
raised once the others are done, so the message is retried for that one (after
``Retry-After`` when given); a refusal (another 4xx) is recorded and raised at the end.
Every request goes through its provider's guard (breaker and limits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import PushRequest
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import User
from nightshift.common.errors import Deferred, NightshiftError, NotFound, PermanentError
from nightshift.notifications.errors import DeadToken, ProviderRejected
from nightshift.notifications.guards import ProviderGuard
from nightshift.notifications.models import PushDelivery, PushDevice
from nightshift.notifications.preferences import is_enabled
from nightshift.notifications.push.devices import remove_device
from nightshift.notifications.push.fcm import FcmClient
from nightshift.notifications.push.webpush import WebPushClient
from nightshift.notifications.rendering import EmailTemplates, RenderedPush, render_push


@dataclass(frozen=True)
class PushProviders:
    """The push clients and their guards; a client is None when its provider is not configured."""

    fcm: FcmClient | None
    webpush: WebPushClient | None
    fcm_guard: ProviderGuard
    webpush_guard: ProviderGuard


@dataclass
class PushOutcome:
    """Devices pushed now, removed as dead, skipped as done before, and refused."""

    sent: int = 0
    removed: int = 0
    already_done: int = 0
    refused: int = 0
    errors: list[NightshiftError] = field(default_factory=list)


def send_push(
    sessions: sessionmaker[Session],
    providers: PushProviders,
    request: PushRequest,
    *,
    templates: EmailTemplates | None = None,
) -> PushOutcome:
    """Push *request*'s template to its user's devices, once per device.

    Returns:
      What happened per device.

    Raises:
      NotFound: The user does not exist.
      Deferred: A provider's breaker is open or its limit reached (devices done so far stay done).
      TransientError: A device's provider failed in a retryable way (retried for that device).
      PermanentError: A device was refused, or its provider is not configured.
    """
    templates = templates or EmailTemplates()
    with sessions() as session:
        user = session.get(User, request.user_id)
        if user is None:
            raise NotFound(f"user {request.user_id} does not exist")
        if not is_enabled(session, request.user_id, request.category, "push"):
            return PushOutcome()
        rendered = render_push(templates, request.template, user.locale, {"display_name": user.display_name})
        devices = session.scalars(
            select(PushDevice.id).where(PushDevice.user_id == request.user_id).order_by(PushDevice.id)
        ).all()
    outcome = PushOutcome()
    for device_id in devices:
        try:
            _push_one(sessions, providers, request, rendered, device_id, outcome)
        except Deferred:
            raise
        except NightshiftError as error:
            outcome.errors.append(error)
    transient = [e for e in outcome.errors if not isinstance(e, PermanentError)]
    if transient:
        raise transient[0]
    if outcome.errors:
        raise outcome.errors[0]
    return outcome


def _push_one(
    sessions: sessionmaker[Session],
    providers: PushProviders,
    request: PushRequest,
    rendered: RenderedPush,
    device_id: int,
    outcome: PushOutcome,
) -> None:
    with transaction(sessions) as session:
        device = session.get(PushDevice, device_id, with_for_update=True)
        if device is None:
            return  # removed meanwhile
        done = session.get(PushDelivery, (request.idempotency_key, device_id))
        if done is not None:
            outcome.already_done += 1
            return
        data = {"template": request.template, **{k: str(v) for k, v in request.context_ids.items()}}
        send = _sender(providers, device, rendered, data)
        guard = providers.fcm_guard if device.platform == "fcm" else providers.webpush_guard
        try:
            with guard.call():
                provider_id: str | None = send()
            status = "sent"
            outcome.sent += 1
        except DeadToken:
            remove_device(session, device_id)
            provider_id, status = None, "removed"
            outcome.removed += 1
        except ProviderRejected:
            outcome.refused += 1
            raise
        session.execute(
            insert(PushDelivery)
            .values(
                idempotency_key=request.idempotency_key, device_id=device_id, status=status, provider_id=provider_id
            )
            .on_conflict_do_nothing()
        )


def _sender(
    providers: PushProviders, device: PushDevice, rendered: RenderedPush, data: dict[str, str]
) -> Callable[[], str | None]:
    if device.platform == "fcm":
        fcm = providers.fcm
        if fcm is None:
            raise PermanentError("FCM is not configured (NOTIFICATIONS_FCM_CREDENTIALS_FILE)")
        token = device.token
        return lambda: fcm.send(token, title=rendered.title, body=rendered.body, data=data)
    webpush = providers.webpush
    if webpush is None:
        raise PermanentError("Web Push is not configured (NOTIFICATIONS_VAPID_PRIVATE_KEY)")
    endpoint, p256dh, auth = device.token, device.p256dh or "", device.auth or ""
    payload = {"title": rendered.title, "body": rendered.body, "data": data}
    return lambda: webpush.send(endpoint, p256dh=p256dh, auth=auth, payload=payload)
