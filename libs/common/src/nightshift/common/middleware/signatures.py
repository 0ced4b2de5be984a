"""Sign every message on enqueue; refuse, before anything else, one whose signature does not hold."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from nightshift.common.errors import MessageRefused
from nightshift.common.signing import MessageSigner

#: Refusals of one kind on one queue raise one alert per this many seconds.
ALERT_PERIOD_S = 3600
#: Alert keys remembered by a process (refusals beyond are still refused, the alert was sent).
ALERTS_REMEMBERED = 1024


class MessageSigning(Middleware):
    """Sign each message as it is enqueued (see :mod:`nightshift.common.signing`).

    Must come **last** in the stack: before-hooks run in order, so the options
    other middleware add on enqueue (the trace context) are signed too. Every
    enqueue goes through here — ``broker.enqueue``, ``enqueue_many``, the
    scheduler's fenced script, which runs the enqueue hooks itself.

    Parameters:
      signer: Signs with the current key of its ring.
    """

    def __init__(self, *, signer: MessageSigner) -> None:
        self.signer = signer

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        self.signer.ensure_signed(message)


class SignatureCheck(Middleware):
    """Refuse a message that is unsigned, signed with an unknown or retired key, or altered.

    A refused message is failed and skipped: its actor never runs, no other
    middleware sees it start, and the worker nacks it to the dead letters, where
    :class:`~nightshift.common.middleware.dead_letter_reasons.DeadLetterReasons`
    keeps the refusal (type and reason). An ``ops.alert_raised`` event is published
    once per queue, kind of refusal and hour.

    Must come **first** in the stack.

    Parameters:
      signer: Accepts the keys of its ring that are not retired.
      alerts: Publish ``ops.alert_raised`` on a refusal.
    """

    def __init__(self, *, signer: MessageSigner, alerts: bool = True) -> None:
        self.signer = signer
        self.alerts = alerts
        self._alerted: dict[str, None] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        try:
            self.signer.verify(message)
        except MessageRefused as refusal:
            message.fail()
            broker.logger.error("Refused message on %s: %s", message.queue_name, refusal)
            if self.alerts:
                self._alert(broker, message, refusal)
            raise

    def _alert(self, broker: dramatiq.Broker, message: MessageProxy, refusal: MessageRefused) -> None:
        from nightshift.common.events import publish  # the catalog imports every contract

        queue = str(message.queue_name)[:100]
        kind = type(refusal).__name__
        key = f"message_refused:{queue}:{kind}:{int(time.time()) // ALERT_PERIOD_S}"
        with self._lock:
            if key in self._alerted:
                return
            self._alerted[key] = None
            while len(self._alerted) > ALERTS_REMEMBERED:
                del self._alerted[next(iter(self._alerted))]
        try:
            publish(
                "ops.alert_raised",
                {
                    "alert_key": key[:200],
                    "source": "broker",
                    "kind": "message_refused",
                    "severity": "critical",
                    "summary": f"{kind}: a message on {queue} was refused and dead-lettered"[:300],
                    "facts": {"queue": queue, "refusal": kind, "reason": str(refusal)[:300]},
                },
                broker=broker,
            )
        except Exception:
            broker.logger.warning("Could not raise the alert for a refused message.", exc_info=True)
