"""The welcome flow: ask notifications for the welcome email, once per user ever."""

from __future__ import annotations

from sqlalchemy.orm import Session

from nightshift.common.db.models import User
from nightshift.common.errors import NotFound
from nightshift.common.idempotency import claim
from nightshift.common.outbox import publish_in_transaction

#: The template notifications renders for new users.
WELCOME_TEMPLATE = "welcome"


def request_welcome_email(session: Session, user_id: int) -> bool:
    """Record, in *session*'s transaction, a request for *user_id*'s welcome email.

    The idempotency key and the outbox event commit together, so a redelivered
    ``user.registered`` finds the key and requests nothing.

    Returns:
      True if the request was recorded now, False if it had been already.

    Raises:
      NotFound: There is no such user (a permanent error).
    """
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    if not claim(session, f"welcome_email:{user_id}"):
        return False
    publish_in_transaction(
        session,
        "notification.requested",
        {"user_id": user_id, "template": WELCOME_TEMPLATE, "idempotency_key": f"welcome:{user_id}"},
        aggregate_id=f"user:{user_id}",
    )
    return True
