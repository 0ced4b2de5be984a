"""Registering webhook endpoints and rotating their secrets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.errors import NotFound, PermanentError
from nightshift.common.events.catalog import WEBHOOK_EVENTS
from nightshift.notifications.models import WebhookEndpoint
from nightshift.notifications.webhooks.safe_http import check_url
from nightshift.notifications.webhooks.signing import new_secret


class InvalidEndpoint(PermanentError):
    """An endpoint asking for events integrations cannot subscribe to, or for none."""


@dataclass(frozen=True)
class RegisteredEndpoint:
    """A new endpoint's id and its secret (shown once to its owner)."""

    id: int
    secret: str


def register_endpoint(
    sessions: sessionmaker[Session], owner_user_id: int, url: str, events: list[str], *, allow_loopback: bool = False
) -> RegisteredEndpoint:
    """Register *url* for *events* on behalf of *owner_user_id*.

    Raises:
      UnsafeUrl: The URL is not https or resolves to a non-public address.
      InvalidEndpoint: No events, or events that are not integration events.
    """
    check_url(url, allow_loopback=allow_loopback)
    unknown = sorted(set(events) - WEBHOOK_EVENTS)
    if not events or unknown:
        raise InvalidEndpoint(
            f"webhook events must be among {', '.join(sorted(WEBHOOK_EVENTS))}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    secret = new_secret()
    with transaction(sessions) as session:
        endpoint = WebhookEndpoint(owner_user_id=owner_user_id, url=url, events=sorted(set(events)), secret=secret)
        session.add(endpoint)
        session.flush()
        return RegisteredEndpoint(endpoint.id, secret)


def rotate_secret(sessions: sessionmaker[Session], endpoint_id: int, *, overlap: dt.timedelta) -> str:
    """Give endpoint *endpoint_id* a new secret; the old one stays valid for *overlap*.

    Returns:
      The new secret.

    Raises:
      NotFound: No such endpoint.
    """
    secret = new_secret()
    with transaction(sessions) as session:
        changed = session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(
                previous_secret=WebhookEndpoint.secret,
                previous_expires_at=func.now() + overlap,
                secret=secret,
            )
        )
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"webhook endpoint {endpoint_id} does not exist")
    return secret


def secrets_in_use(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets a delivery is signed with: the current one, and the previous one until it expires."""
    valid = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_expires_at and endpoint.previous_expires_at > now:
        valid.append(endpoint.previous_secret)
    return valid
