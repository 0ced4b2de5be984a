"""Revoking jobs: a job revoked before it starts never runs; a running one can be terminated.

``revoke`` writes one key per job in the broker's Redis (``__revoked__.<job id>``,
kept a week, the longest a Dramatiq message can be delayed), so a worker checks
a message with a single ``EXISTS`` before running it (the
:class:`~nightshift.common.middleware.revocations.Revocations` middleware). A
revoke with ``terminate=True`` also interrupts a job that is running: each worker
process polls the keys of the messages it runs and raises :class:`Terminated` in
the thread running a terminated one, the way Dramatiq's ``TimeLimit`` raises its
exception (an asynchronous exception: delivered between two bytecodes, so a
blocking system call finishes first). Actors with long loops call
:func:`check_abort` at their safe points to stop sooner and more cleanly.

Either way the job record ends ``revoked`` (final), and the message is acked:
a revoked job is not retried and is not a dead letter.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dramatiq.middleware import CurrentMessage
from dramatiq.threading import Interrupt
from sqlalchemy import text

from nightshift.common.errors import UnknownJob
from nightshift.common.locate import locate_job
from nightshift.common.redis_keys import RedisKeys

if TYPE_CHECKING:
    from dramatiq.brokers.redis import RedisBroker
    from sqlalchemy import Engine

#: How long a revocation is kept: a week, the longest a message can be delayed.
REVOCATION_TTL_MS = 7 * 24 * 3600 * 1000

#: Message option set on a revoked message, with the reason; makes its record ``revoked``.
REVOKED_OPTION = "revoked"

#: The reason recorded for a job interrupted by ``revoke(..., terminate=True)``.
TERMINATED_REASON = "terminated by operator"

#: The reason recorded for a job revoked before it started.
REVOKED_REASON = "revoked by operator"


class Terminated(Interrupt):
    """Raised in a job's thread (or by :func:`check_abort`) when its job was revoked."""


@dataclass(frozen=True)
class Revocation:
    """A revoked job: whether a running attempt is to be interrupted, and when it was asked."""

    job_id: str
    terminate: bool
    at_ms: int

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.at_ms / 1000, dt.UTC)

    @property
    def reason(self) -> str:
        return TERMINATED_REASON if self.terminate else REVOKED_REASON

    def encode(self) -> bytes:
        return json.dumps({"terminate": self.terminate, "at_ms": self.at_ms}).encode()

    @classmethod
    def decode(cls, job_id: str, raw: bytes) -> Revocation:
        data = json.loads(raw)
        return cls(job_id, bool(data["terminate"]), int(data["at_ms"]))


def revoke(broker: RedisBroker, job_id: str, *, terminate: bool = False, engine: Engine | None = None) -> Revocation:
    """Revoke job *job_id*: if it has not started it never will; with *terminate*, stop it if running.

    Revoking again with ``terminate=True`` upgrades an earlier revoke; a plain
    revoke never downgrades one.

    Parameters:
      broker: The broker whose workers run the job.
      job_id: The job id (the Dramatiq message id ``publish`` returned).
      terminate: Also interrupt the job if a worker is running it now.
      engine: Where ``job_records`` are; without it only Redis is searched.

    Raises:
      UnknownJob: When no job record has this id and no queue holds it.

    Returns:
      The revocation as stored.
    """
    if not _exists(broker, job_id, engine):
        raise UnknownJob(job_id)
    revocation = Revocation(job_id, terminate, int(time.time() * 1000))
    key = RedisKeys(broker.namespace).revoked(job_id)
    if terminate:
        broker.client.set(key, revocation.encode(), px=REVOCATION_TTL_MS)
    elif not broker.client.set(key, revocation.encode(), px=REVOCATION_TTL_MS, nx=True):
        existing = get_revocation(broker, job_id)
        return existing or revocation
    return revocation


def get_revocation(broker: RedisBroker, job_id: str) -> Revocation | None:
    """The revocation of *job_id*, if it was revoked (within the last week)."""
    raw = broker.client.get(RedisKeys(broker.namespace).revoked(job_id))
    return Revocation.decode(job_id, raw) if raw is not None else None


def is_abort_requested(job_id: str, *, broker: RedisBroker | None = None) -> bool:
    """Whether job *job_id* was revoked (with or without ``terminate``).

    A running actor that asks is told to stop at its safe point even after a
    plain revoke: the operator no longer wants its result.

    Parameters:
      broker: Defaults to Dramatiq's global broker.
    """
    client_broker = broker or _global_broker()
    return bool(client_broker.client.exists(RedisKeys(client_broker.namespace).revoked(job_id)))


def check_abort() -> None:
    """Stop the current job here if it was revoked: call it at an actor's safe points.

    Raises:
      Terminated: When the running message's job was revoked; the worker records
        it ``revoked`` and neither retries nor dead-letters it.
    """
    message = CurrentMessage.get_current_message()
    if message is not None and is_abort_requested(message.message_id):
        raise Terminated(TERMINATED_REASON)


def _global_broker() -> RedisBroker:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = dramatiq.get_broker()
    if not isinstance(broker, RedisBroker):
        raise TypeError(f"revocations need a Redis broker, not {type(broker).__name__}")
    return broker


def _exists(broker: RedisBroker, job_id: str, engine: Engine | None) -> bool:
    try:
        uuid.UUID(job_id)
    except ValueError:
        return False
    if engine is not None:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM job_records WHERE message_id = CAST(:id AS uuid)"), {"id": job_id}
            ).first()
        if found is not None:
            return True
    return locate_job(broker, job_id) is not None
