"""Notification preferences per user, category and channel, and signed one-click unsubscribe links.

A user with no row for a category has its default (``DEFAULT_PREFERENCES``:
digest on, product news off, security on); ``security`` cannot be turned off.
Every bulk email carries ``List-Unsubscribe`` (an HTTPS link signed with
HMAC-SHA256, so it names the user without a login) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058): a mail client's
one-click POST to the link unsubscribes at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import quote

import redis
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import (
    DEFAULT_PREFERENCES,
    NOTIFICATION_CATEGORIES,
    NOTIFICATION_CHANNELS,
    NotificationPreference,
)
from nightshift.common.errors import PermanentError
from nightshift.notifications.settings import NotificationsSettings

#: Redis key of the link secret used when none is configured (outside production).
SECRET_KEY = "notifications:unsubscribe_secret"  # noqa: S105 - a Redis key name
#: Bytes of the HMAC kept in a link (128 bits).
_SIGNATURE_BYTES = 16


class InvalidPreference(PermanentError):
    """An unknown category or channel, or an attempt to turn security notifications off."""


class InvalidUnsubscribeLink(PermanentError):
    """An unsubscribe token that is malformed or not signed with our secret."""


def set_preference(
    session: Session, user_id: int, category: str, channel: str, *, enabled: bool, source: str = "settings"
) -> None:
    """Record user *user_id*'s choice for *category* on *channel*, in the caller's transaction.

    Raises:
      InvalidPreference: Unknown category or channel, or ``security`` turned off.
    """
    if category not in NOTIFICATION_CATEGORIES:
        raise InvalidPreference(f"unknown category {category!r} (known: {', '.join(NOTIFICATION_CATEGORIES)})")
    if channel not in NOTIFICATION_CHANNELS:
        raise InvalidPreference(f"unknown channel {channel!r} (known: {', '.join(NOTIFICATION_CHANNELS)})")
    if category == "security" and not enabled:
        raise InvalidPreference("security notifications cannot be turned off")
    statement = insert(NotificationPreference).values(
        user_id=user_id, category=category, channel=channel, enabled=enabled, source=source
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[
                NotificationPreference.user_id,
                NotificationPreference.category,
                NotificationPreference.channel,
            ],
            set_={"enabled": enabled, "source": source, "updated_at": func.now()},
        )
    )


def is_enabled(session: Session, user_id: int, category: str | None, channel: str) -> bool:
    """Whether *user_id* wants *category* on *channel* (a transactional message, category None, always goes)."""
    if category is None or category == "security":
        return True
    row = session.get(NotificationPreference, (user_id, category, channel))
    return row.enabled if row is not None else DEFAULT_PREFERENCES[category]


def unsubscribe(sessions: sessionmaker[Session], user_id: int, category: str, *, source: str = "one_click") -> None:
    """Turn *category* email off for *user_id* now (a one-click unsubscribe, a provider's event).

    Raises:
      InvalidPreference: The category is ``security`` or unknown.
    """
    with transaction(sessions) as session:
        set_preference(session, user_id, category, "email", enabled=False, source=source)


class UnsubscribeLinks:
    """Signs and reads the tokens of unsubscribe links.

    Parameters:
      secret: The HMAC key.
      base_url: The public listener's URL (``NOTIFICATIONS_PUBLIC_URL``).
    """

    def __init__(self, secret: bytes, base_url: str) -> None:
        self.secret = secret
        self.base_url = base_url.rstrip("/")

    def token(self, user_id: int, category: str) -> str:
        """A token naming *user_id* and *category*, signed."""
        payload = f"{user_id}.{category}"
        return f"{payload}.{self._sign(payload)}"

    def url(self, user_id: int, category: str) -> str:
        """The link of ``List-Unsubscribe`` and of the email's footer."""
        return f"{self.base_url}/unsubscribe?token={quote(self.token(user_id, category))}"

    def headers(self, user_id: int, category: str) -> tuple[tuple[str, str], ...]:
        """The RFC 8058 headers of a bulk email."""
        return (
            ("List-Unsubscribe", f"<{self.url(user_id, category)}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )

    def read(self, token: str) -> tuple[int, str]:
        """The user and category a token names.

        Raises:
          InvalidUnsubscribeLink: Malformed, or the signature does not match.
        """
        user, _, rest = token.partition(".")
        category, _, signature = rest.partition(".")
        if not (user.isdigit() and category in NOTIFICATION_CATEGORIES and signature):
            raise InvalidUnsubscribeLink("malformed unsubscribe token")
        if not hmac.compare_digest(signature, self._sign(f"{user}.{category}")):
            raise InvalidUnsubscribeLink("unsubscribe token not signed by us")
        return int(user), category

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_secret(settings: NotificationsSettings, client: redis.Redis[bytes]) -> bytes:
    """``NOTIFICATIONS_UNSUBSCRIBE_SECRET``, or (outside production) one kept in Redis for every worker."""
    if settings.unsubscribe_secret is not None:
        return settings.unsubscribe_secret.get_secret_value().encode()
    client.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)
    stored = client.get(SECRET_KEY)
    assert stored is not None
    return stored
