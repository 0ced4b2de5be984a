"""Builders of the public listener and the unsubscribe links, once per process through ``runtime``."""

from __future__ import annotations

from nightshift.common import runtime
from nightshift.notifications.feedback import SendGridEvents
from nightshift.notifications.preferences import UnsubscribeLinks, link_secret
from nightshift.notifications.public_http import PublicServer
from nightshift.notifications.settings import NotificationsSettings


def configured_links() -> UnsubscribeLinks:
    """The unsubscribe links of this process's settings (``runtime.resource(configured_links)``)."""
    settings = runtime.service_settings(NotificationsSettings)
    return UnsubscribeLinks(link_secret(settings, runtime.app_redis()), settings.public_url)


def build_public_server(*, port: int | None = None) -> PublicServer:
    """The public listener (unsubscribe, provider webhooks) on the configured address, not started."""
    settings = runtime.service_settings(NotificationsSettings)
    key = settings.sendgrid_webhook_public_key
    return PublicServer(
        runtime.session_factory(),
        runtime.resource(configured_links),
        sendgrid_events=SendGridEvents(key, max_age_s=settings.sendgrid_webhook_max_age_s) if key else None,
        host=settings.public_host,
        port=settings.public_port if port is None else port,
    )
