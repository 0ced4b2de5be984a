"""The workflow of a request: one part per service, then one finishing step when all are done.

This is the group-plus-completion-callback shape of Dramatiq's ``group`` with
``add_completion_callback``, kept in PostgreSQL instead of a Redis barrier:

* :func:`start_parts` inserts one ``gdpr_parts`` row per service (once) and sends
  a message to each service's part actor for every part still pending, with a
  message id derived from the request, kind and service (a re-run sends the
  same jobs again; a part already done ignores them).
* A part does its work and calls :func:`finish_part` in the transaction of its
  last change: the part is marked done with its counts, and the transaction that
  finds no part left pending also writes ``gdpr.parts_completed`` to the outbox.
  The request row is locked first, so exactly one part sees itself last, and the
  finishing step is enqueued exactly when (and only if) the last part committed.

Why not Dramatiq's barrier (``GroupCallbacks``): it counts successful *runs* in
Redis, so a part redelivered after a crash counts twice and fires the callback
early, it forgets after a TTL (a day by default; an erasure may take a month),
and its state is neither in the database with the work nor visible to operators.
Here a part's completion commits with its effect, and the parts are rows anyone
can read (``nightshift gdpr status``); each part is also a job like any other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import dramatiq
from dramatiq import Message
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.gdpr import GDPR_SERVICES, erase_part, export_part
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import GdprPart, GdprRequest
from nightshift.common.errors import NotFound, PermanentError
from nightshift.common.outbox import publish_in_transaction

#: Namespace of the parts' message ids (uuid5 of ``gdpr:<request>:<kind>:<service>``).
PART_ID_NAMESPACE = uuid.UUID("0b7f3a52-58a4-4c8e-9f57-7c1d7e0d2a61")

PENDING, DONE = "pending", "done"


class WrongKind(PermanentError):
    """A message for an export reached an erasure's actor, or the reverse."""


def part_message_id(request_id: int, kind: str, service: str) -> str:
    """The job id of *service*'s part of request *request_id*: the same on every send."""
    return str(uuid.uuid5(PART_ID_NAMESPACE, f"gdpr:{request_id}:{kind}:{service}"))


def start_parts(
    sessions: sessionmaker[Session], request_id: int, *, kind: str, broker: dramatiq.Broker | None = None
) -> list[Message[Any]]:
    """Create *request_id*'s parts (once) and send a message for each part still pending.

    Safe to run again (a redelivery, an operator's resume): done parts are not sent.

    Returns:
      The messages sent (their ids are the parts' job ids).

    Raises:
      NotFound: There is no such request.
      WrongKind: The request is not of *kind*.
    """
    with transaction(sessions) as session:
        request = _request(session, request_id, kind)
        if request.status == DONE:
            return []
        session.execute(
            insert(GdprPart)
            .values([{"request_id": request_id, "service": service} for service in GDPR_SERVICES])
            .on_conflict_do_nothing()
        )
        pending = session.scalars(
            select(GdprPart.service).where(GdprPart.request_id == request_id, GdprPart.status == PENDING)
        ).all()
    contract = export_part if kind == "export" else erase_part
    return [
        contract(service).send(
            {"request_id": request_id},
            broker=broker,
            message_id=part_message_id(request_id, kind, service),
            options={"trigger": f"gdpr:{kind}:{request_id}"},
        )
        for service in GDPR_SERVICES
        if service in pending
    ]


def pending_subject(session: Session, request_id: int, service: str, *, kind: str) -> int | None:
    """The user id *service*'s part works on, or None when the part is done already.

    Raises:
      NotFound: There is no such request or part.
      WrongKind: The request is not of *kind*.
    """
    request = _request(session, request_id, kind)
    part = session.get(GdprPart, (request_id, service))
    if part is None:
        raise NotFound(f"GDPR request {request_id} has no {service} part")
    if part.status == DONE:
        return None
    if request.user_id is None:
        raise PermanentError(f"GDPR request {request_id} has no subject left")
    return request.user_id


def finish_part(session: Session, request_id: int, service: str, counts: Mapping[str, int]) -> bool:
    """Acknowledge *service*'s part with *counts*, in the caller's transaction (the one of its last change).

    When no other part is pending, ``gdpr.parts_completed`` is written in the same
    transaction, so the finishing step starts once, after the last part committed.

    Returns:
      True if the part was acknowledged now, False if it had been already.
    """
    request = session.get(GdprRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound(f"GDPR request {request_id} does not exist")
    acknowledged = session.execute(
        update(GdprPart)
        .where(GdprPart.request_id == request_id, GdprPart.service == service, GdprPart.status == PENDING)
        .values(status=DONE, counts=dict(counts), finished_at=dt.datetime.now(dt.UTC))
    ).rowcount  # type: ignore[attr-defined]
    if not acknowledged:
        return False
    remaining = session.scalar(
        select(func.count()).select_from(GdprPart).where(GdprPart.request_id == request_id, GdprPart.status != DONE)
    )
    if remaining == 0:
        request.status = "finishing"
        publish_in_transaction(
            session,
            "gdpr.parts_completed",
            {"request_id": request_id, "kind": request.kind},
            aggregate_id=f"gdpr:{request_id}",
        )
    return True


def acknowledgements(session: Session, request_id: int) -> dict[str, dict[str, Any]]:
    """Each part's status, counts and acknowledgement time, by service, in :data:`GDPR_SERVICES` order."""
    parts = {
        part.service: part for part in session.scalars(select(GdprPart).where(GdprPart.request_id == request_id)).all()
    }
    order = [s for s in GDPR_SERVICES if s in parts] + sorted(set(parts) - set(GDPR_SERVICES))
    return {service: _acknowledgement(parts[service]) for service in order}


def _acknowledgement(part: GdprPart) -> dict[str, Any]:
    finished = part.finished_at
    return {
        "status": part.status,
        "counts": dict(part.counts),
        "acknowledged_at": finished.isoformat() if finished is not None else None,
    }


def _request(session: Session, request_id: int, kind: str) -> GdprRequest:
    request = session.get(GdprRequest, request_id)
    if request is None:
        raise NotFound(f"GDPR request {request_id} does not exist")
    if request.kind != kind:
        raise WrongKind(f"GDPR request {request_id} is an {request.kind}, not an {kind}")
    return request
