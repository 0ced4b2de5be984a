"""Keep the reason beside every dead-lettered message."""

from __future__ import annotations

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from nightshift.common import dead_letters


class DeadLetterReasons(Middleware):
    """On every nack, store the exception type and message with the dead letter.

    Before the nack moves the message, so that whoever sees a dead letter sees its reason too;
    a nack that fails leaves the reason to the message's next nack, which overwrites it.
    """

    def before_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not isinstance(broker, RedisBroker):
            return
        error = message._exception
        error_type = type(error).__name__ if error is not None else "Failed"
        reason = str(error) if error is not None else "message was failed by a middleware"
        dead_letters.record_reason(
            broker, q_name(message.queue_name), message.options["redis_message_id"], error_type, reason
        )
