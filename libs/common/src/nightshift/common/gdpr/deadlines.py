"""Requests past their deadline: an operators' alert, once per request."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import GdprPart, GdprRequest
from nightshift.common.outbox import publish_in_transaction


def alert_overdue_requests(sessions: sessionmaker[Session], *, now: dt.datetime | None = None) -> list[int]:
    """Raise ``ops.alert_raised`` for every open request past its deadline not alerted yet.

    The alert and the mark that it was raised commit together, so a daily run
    alerts each overdue request once; the alert names the request, its kind and
    the services still pending, never the user.

    Returns:
      The ids of the requests alerted now.
    """
    now = now or dt.datetime.now(dt.UTC)
    with transaction(sessions) as session:
        overdue = session.scalars(
            select(GdprRequest)
            .where(
                GdprRequest.status != "done",
                GdprRequest.deadline_at < now,
                GdprRequest.overdue_alerted_at.is_(None),
            )
            .order_by(GdprRequest.id)
            .with_for_update(skip_locked=True)
        ).all()
        for request in overdue:
            pending = session.scalars(
                select(GdprPart.service)
                .where(GdprPart.request_id == request.id, GdprPart.status != "done")
                .order_by(GdprPart.service)
            ).all()
            publish_in_transaction(
                session,
                "ops.alert_raised",
                {
                    "alert_key": f"gdpr_overdue:{request.id}",
                    "source": "users",
                    "kind": "gdpr_overdue",
                    "severity": "critical",
                    "summary": f"GDPR {request.kind} request {request.id} is past its deadline",
                    "facts": {
                        "request_id": request.id,
                        "kind": request.kind,
                        "status": request.status,
                        "requested_at": request.requested_at.isoformat(),
                        "deadline_at": request.deadline_at.isoformat(),
                        "pending_parts": ",".join(pending) or "none",
                    },
                },
                aggregate_id=f"gdpr:{request.id}",
            )
            request.overdue_alerted_at = now
        return [request.id for request in overdue]
