"""Asking for an export or an erasure: the request row and its event, in the caller's transaction.

The audit of a request is its row: who asked (``requested_by``: an operator's
name, or ``subject`` when the user asked) and when, and the subject only as a
keyed digest once erased. Asking to erase a user whose erasure was already
asked returns that request and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightshift.common.db.models import GdprRequest, User
from nightshift.common.errors import NotFound, PermanentError
from nightshift.common.outbox import publish_in_transaction

#: The kinds of request, and the event each one publishes.
Kind = Literal["export", "erasure"]
EVENTS: dict[str, str] = {"export": "gdpr.export_requested", "erasure": "gdpr.erasure_requested"}

#: ``requested_by``: ``subject`` or an operator's login (no spaces, no ``@``: not an address).
_REQUESTER = re.compile(r"^(subject|operator:[A-Za-z0-9._-]{1,100})$")


class InvalidRequester(PermanentError):
    """``requested_by`` is not ``subject`` nor ``operator:<login>``."""


def subject_digest(user_id: int, key: bytes) -> str:
    """A keyed hash of a user id: recognises the subject again without keeping the id."""
    return hmac.new(key, f"user:{user_id}".encode(), hashlib.sha256).hexdigest()


def request_export(
    session: Session, user_id: int, *, requested_by: str, key: bytes, deadline: dt.timedelta
) -> GdprRequest:
    """Record an export of *user_id*'s data and ``gdpr.export_requested`` in *session*'s transaction.

    Parameters:
      requested_by: ``subject`` (the user asked) or ``operator:<login>``.
      key: The proof key (for the subject digest).
      deadline: How long the request may take before an alert is raised.

    Raises:
      NotFound: There is no such user.
      InvalidRequester: *requested_by* is malformed.
    """
    _check_requester(requested_by)
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    return _record(session, "export", user_id, requested_by, subject_digest(user_id, key), deadline)


def request_erasure(
    session: Session, user_id: int, *, requested_by: str, key: bytes, deadline: dt.timedelta
) -> tuple[GdprRequest, bool]:
    """Record an erasure of *user_id* and ``gdpr.erasure_requested``, unless one was asked already.

    Two requests for one subject are serialised by an advisory lock on its digest.

    Returns:
      The request, and whether it was recorded now (False: the earlier request; nothing changed).

    Raises:
      NotFound: There is no such user and no erasure of it was ever asked.
      InvalidRequester: *requested_by* is malformed.
    """
    _check_requester(requested_by)
    digest = subject_digest(user_id, key)
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended("gdpr:" + digest, 0))))
    earlier = session.scalars(
        select(GdprRequest)
        .where(GdprRequest.subject_digest == digest, GdprRequest.kind == "erasure")
        .order_by(GdprRequest.id)
        .limit(1)
    ).first()
    if earlier is not None:
        return earlier, False
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    return _record(session, "erasure", user_id, requested_by, digest, deadline), True


def _record(
    session: Session, kind: Kind, user_id: int, requested_by: str, digest: str, deadline: dt.timedelta
) -> GdprRequest:
    now = dt.datetime.now(dt.UTC)
    row = GdprRequest(
        kind=kind,
        user_id=user_id,
        subject_digest=digest,
        requested_by=requested_by,
        requested_at=now,
        status="running",
        deadline_at=now + deadline,
    )
    session.add(row)
    session.flush()
    publish_in_transaction(session, EVENTS[kind], {"request_id": row.id}, aggregate_id=f"gdpr:{row.id}")
    return row


def _check_requester(requested_by: str) -> None:
    if not _REQUESTER.match(requested_by):
        raise InvalidRequester("requested_by must be 'subject' or 'operator:<login>' (letters, digits, '._-')")
