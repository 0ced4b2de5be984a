"""The transactional outbox: events written with the publisher's own changes.

:func:`publish_in_transaction` validates the event and inserts it in the
caller's SQLAlchemy transaction, and asks PostgreSQL to notify the relay when
that transaction commits. :class:`OutboxRelay` forwards committed rows in id
order under an advisory lock (one relay at a time, so order per aggregate
holds), then marks them sent: at-least-once, with message ids derived from the
row id so a re-send after a crash is recognisable downstream.

A row whose event this process does not know (a publisher of a newer version,
during a rolling deploy) stops the batch there: it and the rows after it stay
unsent for a relay that knows it, never marked sent without being relayed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import dramatiq
import psycopg
from opentelemetry import propagate
from pydantic import BaseModel
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.orm import Session

from nightshift.common.db.models import OutboxEvent
from nightshift.common.errors import EventError, UnknownEvent
from nightshift.common.events import event_messages, event_spec, validate_event
from nightshift.common.middleware.tracing import TRACE_OPTION

logger = logging.getLogger(__name__)

#: PostgreSQL channel notified when outbox rows are committed.
OUTBOX_CHANNEL = "nightshift_outbox"
#: Advisory lock key held by the one relay working at a time.
RELAY_LOCK = 7_204_815_302

#: Whether anything is left to relay (the partial index on unsent rows answers it).
_ANY_UNSENT = "SELECT EXISTS (SELECT 1 FROM outbox_events WHERE sent_at IS NULL)"


def publish_in_transaction(
    session: Session, name: str, payload: Mapping[str, Any] | BaseModel, *, aggregate_id: str | None = None
) -> OutboxEvent:
    """Record event *name* in *session*'s transaction; it is relayed once committed.

    Raises:
      UnknownEvent, InvalidEvent: At once, like :func:`nightshift.common.events.publish`.
    """
    _, event = validate_event(name, payload)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    row = OutboxEvent(
        event_name=name,
        payload=event.model_dump(mode="json"),
        aggregate_id=aggregate_id,
        trace_context=carrier,
    )
    session.add(row)
    session.flush()
    session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})
    return row


def publish_many_in_transaction(
    session: Session,
    name: str,
    payloads: Sequence[Mapping[str, Any] | BaseModel],
    *,
    aggregate_ids: Sequence[str | None] | None = None,
) -> int:
    """Record one event *name* per payload in *session*'s transaction, in one statement.

    For set-based work that publishes an event per row (a cleanup batch): each
    payload is validated as :func:`publish_in_transaction` does, the rows are
    inserted together, and the relay is notified once.

    Returns:
      How many events were recorded.

    Raises:
      UnknownEvent, InvalidEvent: At once, naming the first payload refused; nothing is recorded.
    """
    if aggregate_ids is not None and len(aggregate_ids) != len(payloads):
        raise ValueError("aggregate_ids must have one entry per payload")
    if not payloads:
        return 0
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    rows = [
        {
            "event_name": name,
            "payload": validate_event(name, payload)[1].model_dump(mode="json"),
            "aggregate_id": aggregate_ids[index] if aggregate_ids is not None else None,
            "trace_context": carrier,
        }
        for index, payload in enumerate(payloads)
    ]
    session.execute(insert(OutboxEvent), rows)
    session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})
    return len(rows)


class OutboxRelay:
    """Forwards committed outbox rows to the broker.

    Parameters:
      engine: The database holding the outbox.
      broker: Where messages go.
      batch_size: Rows per transaction.
      poll_interval_s: How often to look without a notification (a safety net: commits
        notify the relay, and it drains whenever it (re)connects).
    """

    def __init__(
        self, engine: Engine, broker: dramatiq.Broker, *, batch_size: int = 500, poll_interval_s: float = 5.0
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def relay_once(self) -> int:
        """Forward one batch of unsent rows; return how many were forwarded."""
        with Session(self.engine) as session, session.begin():
            if not session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RELAY_LOCK}).scalar():
                return 0
            rows = self._known(
                session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.sent_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(self.batch_size)
                ).all()
            )
            messages = [message for row in rows for message in self._messages(row)]
            enqueue_many = getattr(self.broker, "enqueue_many", None)
            if enqueue_many is not None:
                enqueue_many(messages)  # in row order, one round trip per thousand
            else:
                for message in messages:
                    self.broker.enqueue(message)
            if rows:
                session.execute(
                    update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(sent_at=text("now()"))
                )
            return len(rows)

    def _known(self, rows: Sequence[OutboxEvent]) -> Sequence[OutboxEvent]:
        """*rows* up to the first whose event is not in this process's catalog (left, in order, for another relay)."""
        for index, row in enumerate(rows):
            try:
                event_spec(row.event_name)
            except UnknownEvent:
                logger.warning(
                    "Outbox row %s is event %r, unknown to this process (an older version?); "
                    "it and the rows after it are left for a relay that knows it.",
                    row.id,
                    row.event_name,
                )
                return rows[:index]
        return rows

    def _messages(self, row: OutboxEvent) -> list[dramatiq.Message[Any]]:
        """The messages *row* is relayed as (none if it no longer validates)."""
        try:
            spec, event = validate_event(row.event_name, row.payload)
        except EventError:
            # Validated when written; only a schema change since can get here.
            logger.error("Outbox row %s no longer matches its event schema; not relayed.", row.id, exc_info=True)
            return []
        options = {TRACE_OPTION: row.trace_context} if row.trace_context else None
        return event_messages(spec, event, idempotency_base=f"outbox:{row.id}", options=options)

    def pending(self) -> bool:
        """Whether any row waits to be relayed: one indexed ``EXISTS``, no ORM, no lock."""
        with self.engine.connect() as connection:
            return bool(connection.exec_driver_sql(_ANY_UNSENT).scalar())

    def drain(self) -> int:
        """Relay until nothing is left; return the total."""
        total = 0
        while (count := self.relay_once()) > 0:
            total += count
        return total

    def start(self) -> None:
        """Relay in a background thread, woken by commit notifications."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nightshift-outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as listener:
                    listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    notified = True
                    while not self._stop.is_set():
                        # Woken by a commit: relay. Woken by the safety-net timeout: look first
                        # (an idle worker runs this every poll interval).
                        if notified or self.pending():
                            self.drain()
                        notified = any(True for _ in listener.notifies(timeout=self.poll_interval_s, stop_after=1))
            except Exception:
                logger.warning("Outbox relay lost its connection; retrying.", exc_info=True)
                self._stop.wait(1.0)
