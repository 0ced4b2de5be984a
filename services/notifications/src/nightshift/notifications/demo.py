"""Demo traffic for ``nightshift up``: push devices and a webhook endpoint of the runner's own receiver.

Every few seconds the newest user without a device gets a Web Push subscription
whose push service is the runner's local receiver (``LOCAL_RECEIVER_URL``), and a
push is requested for them; the first tick registers a webhook endpoint on the
same receiver for the integration events (new posts, processed media). With
the welcome emails in the outbox, an operator sees the three channels arrive.
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import User
from nightshift.common.local.receiver import RECEIVER_URL_VARIABLE
from nightshift.common.outbox import publish_in_transaction
from nightshift.notifications.models import PushDevice, WebhookEndpoint
from nightshift.notifications.push.devices import register_device
from nightshift.notifications.webhooks.endpoints import register_endpoint

#: The events the demo endpoint subscribes to.
DEMO_EVENTS = ["post.created", "media.processed"]


def tick(sessions: sessionmaker[Session]) -> int:
    """Register a demo device (and, once, a webhook endpoint) and request a push.

    Returns:
      The id of the device registered.

    Raises:
      LookupError: No receiver (not under ``nightshift up``) or no user yet.
    """
    receiver = os.environ.get(RECEIVER_URL_VARIABLE)
    if not receiver:
        raise LookupError(f"{RECEIVER_URL_VARIABLE} is not set (the demo runs under nightshift up)")
    with sessions() as session:
        user_id = session.scalar(select(func.max(User.id)).where(~exists().where(PushDevice.user_id == User.id)))
        has_endpoint = (session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0) > 0
    if user_id is None:
        raise LookupError("no user without a device yet")
    if not has_endpoint:
        endpoint = register_endpoint(sessions, user_id, f"{receiver}/webhooks/demo", DEMO_EVENTS, allow_loopback=True)
        print(f"demo        webhook endpoint {endpoint.id} -> {receiver}/webhooks/demo ({', '.join(DEMO_EVENTS)})")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = base64.urlsafe_b64encode(
        key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    ).rstrip(b"=")
    auth = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=")
    device = register_device(
        sessions, user_id, "webpush", f"{receiver}/push/{user_id}", p256dh=p256dh.decode(), auth=auth.decode()
    )
    with transaction(sessions) as session:
        publish_in_transaction(
            session,
            "notification.requested",
            {"user_id": user_id, "channel": "push", "template": "welcome", "idempotency_key": f"demo-push:{user_id}"},
            aggregate_id=f"user:{user_id}",
        )
    print(f"demo        device {device} registered for user {user_id} -> a Web Push to the receiver")
    return device
