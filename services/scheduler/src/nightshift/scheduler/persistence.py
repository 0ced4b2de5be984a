"""The loop's decisions in PostgreSQL, fenced by the lease's token.

Each tick's decisions (skipped fires, the cursor ``handled_through``, the last
fire) are written in one transaction, and every cursor moves only under
``WHERE fencing_token <= :token``: a scheduler that finds a newer token has
written commits nothing and must stand down.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.schedule_control import record_event
from nightshift.scheduler import store
from nightshift.scheduler.state import Decision


def record(session_factory: sessionmaker[Session], decisions: Sequence[Decision], *, token: int, by: str) -> str | None:
    """Write every decision of a tick in one transaction, under fencing *token*.

    Parameters:
      decisions: What one tick decided, a schedule each.
      token: The fencing token the tick ran under.
      by: Who decided, as the schedule events say it.

    Returns:
      The name of a schedule a newer token has written (then nothing is committed), else None.

    Raises:
      sqlalchemy.exc.SQLAlchemyError: When PostgreSQL fails (nothing is committed).
    """
    with session_factory() as session:
        fenced_out = write(session, decisions, token=token, by=by)
        if fenced_out is None:
            session.commit()
    return fenced_out


def write(session: Session, decisions: Sequence[Decision], *, token: int, by: str) -> str | None:
    """Add the decisions' events and cursors to *session*.

    Returns:
      The name of the first schedule a newer token has written, else None.
    """
    for decision in decisions:
        name = decision.state.schedule.name
        if decision.skipped_before is not None:
            record_event(session, name, "misfire_skipped", by=by, detail=f"every fire up to {decision.skipped_before}")
        for kind, times in decision.skips():
            record_event(
                session,
                name,
                kind,
                by=by,
                detail=f"{len(times)} fire(s)",
                first_fire_at=times[0],
                last_fire_at=times[-1],
            )
        if decision.handled_through is not None and not store.advance(
            session, name, token=token, handled_through=decision.handled_through, fired=decision.fired
        ):
            return name
    return None
