"""The audit of operators' actions: who did what from the dashboard, the API or the CLI, and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.ops.models import OpsAudit

#: Entries per page of the audit.
PAGE_SIZE = 100


def record(sessions: sessionmaker[Session], *, who: str, via: str, action: str, target: str, **detail: Any) -> None:
    """Write one audit entry.

    Parameters:
      who: The operator, ``token:<name>`` or ``user@host`` (CLI).
      via: ``dashboard``, ``api`` or ``cli``.
      action: What was done (``dead_letters.replay``, ``job.revoke``, ``schedule.pause``…).
      target: What it was done to (a queue, a job id, a schedule).
      detail: Anything else worth keeping (counts, ids), as JSON.
    """
    with transaction(sessions) as session:
        session.add(OpsAudit(who=who, via=via, action=action, target=target, detail=detail))


def entries(
    session: Session, *, before_id: int | None = None, who: str | None = None, limit: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    """The newest audit entries (before *before_id*, for paging), optionally of one person."""
    query = select(OpsAudit).order_by(OpsAudit.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(OpsAudit.id < before_id)
    if who:
        query = query.where(OpsAudit.who == who)
    return [
        {
            "id": row.id,
            "at": _iso(row.at),
            "who": row.who,
            "via": row.via,
            "action": row.action,
            "target": row.target,
            "detail": row.detail,
        }
        for row in session.scalars(query)
    ]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()
