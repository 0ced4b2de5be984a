"""Demo traffic for ``nightshift up``: users registering every few seconds."""

from __future__ import annotations

import random

from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import User
from nightshift.common.outbox import publish_in_transaction

_FIRST = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Barbara", "Dennis", "Frances", "Edsger", "Radia")
_LAST = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
)


def tick(sessions: sessionmaker[Session]) -> int:
    """Create a user and publish ``user.registered`` in the same transaction.

    Returns:
      The new user's id; its welcome email appears in the mail outbox.
    """
    with transaction(sessions) as session:
        name = f"{random.choice(_FIRST)} {random.choice(_LAST)}"
        user = User(email="pending@example.invalid", display_name=name, locale=random.choice(("en", "fr")))
        session.add(user)
        session.flush()
        user.email = f"demo+{user.id}@example.org"
        publish_in_transaction(session, "user.registered", {"user_id": user.id}, aggregate_id=f"user:{user.id}")
    print(f"demo        user {user.id} registered -> welcome email on its way")
    return user.id
