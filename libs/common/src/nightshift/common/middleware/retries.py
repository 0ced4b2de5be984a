"""Retries on a fixed schedule, with permanent errors skipping them."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Retries

from nightshift.common.errors import Deferred, PermanentError, RetryAfter, TransientError
from nightshift.common.middleware.time_limits import TimedOut
from nightshift.common.revocation import Terminated
from nightshift.common.settings import DEFAULT_RETRY_DELAYS_MS

logger = logging.getLogger(__name__)


class ScheduledRetries(Retries):
    """Retry failed messages after fixed delays, then dead-letter them.

    Dramatiq's exponential formula cannot express "1 s, 5 s, 25 s"; here the
    schedule is a list: one retry per entry (a message's own ``retry_delays_ms``
    option comes first, then the actor's, then this default). A :class:`PermanentError` (or a type
    in the actor's ``throws``) is dead-lettered after its first attempt. A
    :class:`Deferred` (an open circuit breaker, a rate limit) is put back with its
    own delay and does not count as a retry; ``deferrals`` counts those. A job stopped at its
    time limit (:class:`TimedOut`) is dead-lettered after its attempt too.

    Parameters:
      delays_ms: The default schedule. Actors override it with the
        ``retry_delays_ms`` option; ``max_retries`` may shorten it.
    """

    def __init__(self, *, delays_ms: Sequence[int] = DEFAULT_RETRY_DELAYS_MS) -> None:
        super().__init__(max_retries=len(delays_ms))
        self.delays_ms = tuple(delays_ms)

    @property
    def actor_options(self) -> set[str]:
        return {*super().actor_options, "retry_delays_ms"}

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or isinstance(exception, Terminated):
            return  # a revoked job is acked: neither retried nor dead-lettered
        if isinstance(exception, Deferred):
            message.options["deferrals"] = message.options.get("deferrals", 0) + 1
            broker.enqueue(message, delay=exception.delay_ms)  # type: ignore[arg-type]
            return
        actor = broker.get_actor(message.actor_name)
        throws = message.options.get("throws") or actor.options.get("throws") or ()
        if isinstance(exception, PermanentError | TimedOut) or (throws and isinstance(exception, throws)):
            message.fail()
            return

        schedule = tuple(message.options.get("retry_delays_ms") or actor.options.get("retry_delays_ms", self.delays_ms))
        max_retries = message.options.get("max_retries", actor.options.get("max_retries", len(schedule)))
        retries = message.options.get("retries", 0)
        message.options["retries"] = retries + 1
        message.options["traceback"] = traceback.format_exc(limit=30)
        message.options["requeue_timestamp"] = int(time.time() * 1000)
        if retries >= min(max_retries, len(schedule)):
            self.logger.warning("Retries exhausted for message %r.", message.message_id)
            message.fail()
            return
        if isinstance(exception, dramatiq.Retry) and exception.delay is not None:
            delay = exception.delay
        else:
            delay = schedule[retries]
        if isinstance(exception, RetryAfter):
            delay = max(delay, exception.retry_after_ms)
        self.logger.info("Retrying message %r in %d ms.", message.message_id, delay)
        enqueue_retry(broker, message, delay)


#: Seconds between two attempts to put a retry back while Redis is unreachable.
REENQUEUE_INTERVAL_S = 1.0


def enqueue_retry(broker: dramatiq.Broker, message: MessageProxy, delay: int) -> None:
    """Put *message* back for its retry, waiting for Redis as long as it takes.

    The message is acked right after this hook: a retry that could not be enqueued
    (Redis restarting, a failover) would be lost, so this waits as Dramatiq's own
    ack does. If the worker is stopped meanwhile, the message is still in its ack
    set and comes back through the recovery of dead workers.
    """
    while True:
        try:
            broker.enqueue(message, delay=delay)  # type: ignore[arg-type]
            return
        except (redis.ConnectionError, redis.TimeoutError, TransientError) as error:
            logger.warning("Could not enqueue the retry of %s (%s); trying again.", message.message_id, error)
            time.sleep(REENQUEUE_INTERVAL_S)
