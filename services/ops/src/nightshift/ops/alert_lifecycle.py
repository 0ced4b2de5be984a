"""An alert's life: it fires once, stays active while its condition holds, resolves with a notice.

The evaluator hands :func:`apply` the conditions that hold now; an alert raised by
another service (``ops.alert_raised``) enters through :func:`raise_external`. Each
firing or resolution that is not silenced becomes an :class:`~nightshift.ops.models.AlertNotice`
in the same transaction, which ``alert_delivery`` sends by email and webhook. Silences
(``OPS`` operators, audited in ``ops_audit``) cover every alert whose key starts with
the silenced key until they end: ``backlog:`` silences every backlog alert,
``backlog:media_high`` one queue's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import OpsAlert
from nightshift.common.db.engine import transaction
from nightshift.ops.alert_rules import Condition
from nightshift.ops.models import Alert, AlertNotice, AlertSilence

#: Key prefix of the alerts raised by other services through ``ops.alert_raised``.
RAISED_PREFIX = "raised:"


@dataclass(frozen=True)
class Transitions:
    """What one evaluation changed: alerts fired, kept, resolved, and the notices to deliver."""

    fired: list[int]
    kept: list[int]
    resolved: list[int]
    notices: list[int]


def is_silenced(session: Session, key: str, now: dt.datetime) -> bool:
    """Whether a silence covers *key* now (a silence's key is a prefix of it)."""
    query = select(AlertSilence.id).where(AlertSilence.until > now, func.starts_with(literal(key), AlertSilence.key))
    return session.scalar(query.limit(1)) is not None


def apply(
    sessions: sessionmaker[Session], conditions: Iterable[Condition], *, rules: Iterable[str], now: dt.datetime
) -> Transitions:
    """Fire, keep or resolve the alerts of *rules* given the *conditions* that hold now.

    Only the alerts of *rules* (the rules that were evaluated) may resolve: a rule that
    could not be evaluated (its source unreachable) neither fires nor resolves.

    Parameters:
      conditions: What holds now, at most one per key (later ones with a repeated key are ignored).
      rules: The rules evaluated this round.
    """
    holding: dict[str, Condition] = {}
    for condition in conditions:
        holding.setdefault(condition.key, condition)
    fired, kept, resolved, notices = [], [], [], []
    with transaction(sessions) as session:
        active = {
            alert.key: alert
            for alert in session.scalars(
                select(Alert).where(
                    Alert.resolved_at.is_(None), Alert.rule.in_(list(rules)), ~Alert.key.startswith(RAISED_PREFIX)
                )
            )
        }
        for key, alert in active.items():
            if key in holding:
                alert.last_seen_at = now
                alert.facts = dict(holding[key].facts)
                kept.append(alert.id)
                continue
            alert.resolved_at = now
            resolved.append(alert.id)
            if alert.notified and not is_silenced(session, key, now):
                notices.append(_notice(session, alert.id, "resolved"))
        for key, condition in holding.items():
            if key in active:
                continue
            alert_id = _fire(session, condition, "ops", now)
            if alert_id is not None:
                fired.append(alert_id)
                if not is_silenced(session, key, now):
                    notices.append(_notice(session, alert_id, "fired"))
                else:
                    session.execute(update(Alert).where(Alert.id == alert_id).values(notified=False))
    return Transitions(fired, kept, resolved, notices)


def raise_external(sessions: sessionmaker[Session], raised: OpsAlert, now: dt.datetime) -> int | None:
    """Record an alert of another service; return the notice to deliver, if any.

    Alerts with the same ``alert_key`` are recorded once (a re-run of the check raises
    nothing new); raised again while active, it stays active longer (see
    :func:`resolve_stale_raised`).
    """
    key = RAISED_PREFIX + raised.alert_key
    with transaction(sessions) as session:
        known = session.scalar(select(Alert).where(Alert.key == key).order_by(Alert.id.desc()).limit(1))
        if known is not None:
            if known.resolved_at is None:
                known.last_seen_at = now
            return None
        condition = Condition(key, raised.kind, raised.severity, raised.summary, dict(raised.facts))
        alert_id = _fire(session, condition, raised.source, now)
        if alert_id is None:
            return None
        if is_silenced(session, key, now):
            session.execute(update(Alert).where(Alert.id == alert_id).values(notified=False))
            return None
        return _notice(session, alert_id, "fired")


def resolve_stale_raised(sessions: sessionmaker[Session], *, older_than: dt.datetime, now: dt.datetime) -> list[int]:
    """Resolve the raised alerts not raised again since *older_than*; return the notices to deliver."""
    notices = []
    with transaction(sessions) as session:
        stale = session.scalars(
            select(Alert).where(
                Alert.resolved_at.is_(None), Alert.key.startswith(RAISED_PREFIX), Alert.last_seen_at < older_than
            )
        ).all()
        for alert in stale:
            alert.resolved_at = now
            if alert.notified and not is_silenced(session, alert.key, now):
                notices.append(_notice(session, alert.id, "resolved"))
    return notices


def silence(sessions: sessionmaker[Session], key: str, *, until: dt.datetime, reason: str, by: str) -> dict[str, Any]:
    """Silence the alerts whose key starts with *key* until *until*; return the silence.

    Raises:
      ValueError: An empty key, an empty reason or an end in the past.
    """
    if not key.strip():
        raise ValueError("key: give the alert's key, or a prefix of keys (e.g. 'backlog:')")
    if not reason.strip():
        raise ValueError("reason: say why the alerts are silenced")
    with transaction(sessions) as session:
        if until <= session.execute(select(func.now())).scalar_one():
            raise ValueError("until: a silence must end in the future")
        row = AlertSilence(key=key.strip(), until=until, reason=reason.strip(), created_by=by)
        session.add(row)
        session.flush()
        return _silence_dict(row)


def end_silence(sessions: sessionmaker[Session], silence_id: int, now: dt.datetime) -> dict[str, Any]:
    """End silence *silence_id* now; return it.

    Raises:
      LookupError: No such silence.
    """
    with transaction(sessions) as session:
        row = session.get(AlertSilence, silence_id)
        if row is None:
            raise LookupError(f"no silence {silence_id}")
        row.until = min(row.until, now)
        return _silence_dict(row)


def active_silences(session: Session, now: dt.datetime) -> list[dict[str, Any]]:
    """Silences in force now, ending soonest first."""
    rows = session.scalars(select(AlertSilence).where(AlertSilence.until > now).order_by(AlertSilence.until))
    return [_silence_dict(row) for row in rows]


def undelivered_notices(session: Session, *, older_than: dt.datetime, webhook: bool) -> list[int]:
    """Notices created before *older_than* (within a day) still waiting for their email or webhook."""
    pending: ColumnElement[bool] = AlertNotice.email_sent_at.is_(None)
    if webhook:
        pending = or_(pending, AlertNotice.webhook_sent_at.is_(None))
    query = select(AlertNotice.id).where(
        and_(pending, AlertNotice.created_at < older_than, AlertNotice.created_at > older_than - dt.timedelta(days=1))
    )
    return list(session.scalars(query.order_by(AlertNotice.id).limit(100)))


def _fire(session: Session, condition: Condition, source: str, now: dt.datetime) -> int | None:
    """Insert the active alert of *condition*; None when one is already active (another writer won)."""
    statement = (
        insert(Alert)
        .values(
            key=condition.key,
            rule=condition.rule,
            source=source,
            severity=condition.severity,
            summary=condition.summary[:300],
            facts=dict(condition.facts),
            fired_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"], index_where=Alert.resolved_at.is_(None))
        .returning(Alert.id)
    )
    return session.scalar(statement)


def _notice(session: Session, alert_id: int, kind: str) -> int:
    notice = AlertNotice(alert_id=alert_id, kind=kind)
    session.add(notice)
    session.flush()
    return notice.id


def _silence_dict(row: AlertSilence) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "until": row.until.isoformat(),
        "reason": row.reason,
        "created_by": row.created_by,
    }
