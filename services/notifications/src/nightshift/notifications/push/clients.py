"""Building the push providers of this process's settings, once through ``runtime.resource``."""

from __future__ import annotations

from nightshift.common import runtime
from nightshift.notifications.guards import provider_guard
from nightshift.notifications.push.fcm import FcmClient
from nightshift.notifications.push.sending import PushProviders
from nightshift.notifications.push.webpush import WebPushClient, new_vapid_key
from nightshift.notifications.settings import NotificationsSettings

#: Redis key of the VAPID key used when none is configured (outside production).
VAPID_KEY = "notifications:vapid_private_key"


def vapid_private_key(settings: NotificationsSettings) -> str | None:
    """``NOTIFICATIONS_VAPID_PRIVATE_KEY``, or (outside production) one kept in Redis for every worker."""
    if settings.vapid_private_key is not None:
        return settings.vapid_private_key.get_secret_value()
    if settings.environment == "production":
        return None
    client = runtime.app_redis()
    client.set(VAPID_KEY, new_vapid_key(), nx=True)
    stored = client.get(VAPID_KEY)
    return stored.decode() if stored else None


def configured_push() -> PushProviders:
    """FCM (when a service account is configured) and Web Push, each behind its guard."""
    settings = runtime.service_settings(NotificationsSettings)
    client = runtime.app_redis()
    fcm = (
        FcmClient(
            settings.fcm_credentials_file,
            project_id=settings.fcm_project_id,
            base_url=settings.fcm_url,
            timeout_s=settings.push_timeout_s,
        )
        if settings.fcm_credentials_file
        else None
    )
    key = vapid_private_key(settings)
    webpush = WebPushClient(key, subject=settings.vapid_subject, timeout_s=settings.push_timeout_s) if key else None
    return PushProviders(
        fcm=fcm,
        webpush=webpush,
        fcm_guard=provider_guard(
            client, settings, "push:fcm", per_second=settings.fcm_rps, concurrency=settings.fcm_concurrency
        ),
        webpush_guard=provider_guard(client, settings, "push:webpush", concurrency=settings.webpush_concurrency),
    )
