"""The notifications service's actors: parse ids, call the logic."""

from __future__ import annotations

from functools import cache

from nightshift.common import runtime
from nightshift.common.contracts import contract_actor
from nightshift.common.contracts.notifications import (
    SEND_EMAIL,
    SEND_EMAIL_CRITICAL,
    SEND_OPS_ALERT,
    EmailRequest,
    OpsAlert,
)
from nightshift.common.settings import load_settings
from nightshift.notifications import alerts, delivery
from nightshift.notifications.mailers import Mailer, build_mailer
from nightshift.notifications.rendering import EmailTemplates
from nightshift.notifications.settings import NotificationsSettings


@cache
def notifications_settings() -> NotificationsSettings:
    return load_settings(NotificationsSettings)


@cache
def mailer() -> Mailer:
    """The configured backend, built once per process (its clients are thread-safe)."""
    return build_mailer(notifications_settings(), outbox_dir=runtime.settings().outbox_dir)


@cache
def templates() -> EmailTemplates:
    return EmailTemplates(default_locale=notifications_settings().default_locale)


def reset() -> None:
    """Forget the cached settings, mailer and templates (tests that change the environment call this)."""
    for function in (notifications_settings, mailer, templates):
        function.cache_clear()


@contract_actor(SEND_EMAIL)
def send_email(payload: EmailRequest) -> None:
    """Send a transactional email, once per idempotency key."""
    delivery.send_email(runtime.session_factory(), mailer(), payload, templates=templates())


@contract_actor(SEND_EMAIL_CRITICAL)
def send_email_critical(payload: EmailRequest) -> None:
    """Send a security or urgent email, once per idempotency key, ahead of everything else."""
    delivery.send_email(runtime.session_factory(), mailer(), payload, templates=templates())


@contract_actor(SEND_OPS_ALERT)
def send_ops_alert(payload: OpsAlert) -> None:
    """Email an alert to the operators' address, once per alert key."""
    alerts.send_ops_alert(
        runtime.session_factory(),
        mailer(),
        payload,
        operators_address=notifications_settings().operators_address,
        templates=templates(),
    )


# Loaded when the worker imports this module: bad mail settings stop it at start, naming the variable.
notifications_settings()
