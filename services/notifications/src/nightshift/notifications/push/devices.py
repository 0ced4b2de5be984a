"""Device registrations: one row per FCM token or Web Push subscription, refreshed when seen again."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.errors import PermanentError
from nightshift.notifications.models import PushDevice

#: The platforms a device may be registered for.
PLATFORMS = ("fcm", "webpush")


class InvalidDevice(PermanentError):
    """A registration with an unknown platform or missing Web Push keys."""


def register_device(
    sessions: sessionmaker[Session],
    user_id: int,
    platform: str,
    token: str,
    *,
    p256dh: str | None = None,
    auth: str | None = None,
) -> int:
    """Register (or refresh) a device; return its id. A token seen again moves to *user_id*.

    Parameters:
      token: The FCM registration token, or the Web Push subscription's endpoint.
      p256dh, auth: The Web Push subscription's keys (required for ``webpush``).

    Raises:
      InvalidDevice: Unknown platform, or a Web Push subscription without its keys.
    """
    if platform not in PLATFORMS:
        raise InvalidDevice(f"unknown push platform {platform!r} (known: {', '.join(PLATFORMS)})")
    if platform == "webpush" and not (p256dh and auth and token.startswith(("https://", "http://"))):
        raise InvalidDevice("a Web Push subscription needs its endpoint URL and its p256dh and auth keys")
    statement = insert(PushDevice).values(user_id=user_id, platform=platform, token=token, p256dh=p256dh, auth=auth)
    with transaction(sessions) as session:
        device_id = session.execute(
            statement.on_conflict_do_update(
                index_elements=[PushDevice.token],
                set_={"user_id": user_id, "p256dh": p256dh, "auth": auth, "last_seen_at": func.now()},
            ).returning(PushDevice.id)
        ).scalar_one()
    return int(device_id)


def remove_device(session: Session, device_id: int) -> None:
    """Forget a device (its token is dead), in the caller's transaction."""
    session.execute(delete(PushDevice).where(PushDevice.id == device_id))
