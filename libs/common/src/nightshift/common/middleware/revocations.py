"""Skip revoked jobs before they start and interrupt terminated ones while they run."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware, SkipMessage

from nightshift.common.redis_keys import RedisKeys
from nightshift.common.revocation import (
    REVOKED_OPTION,
    REVOKED_REASON,
    TERMINATED_REASON,
    Revocation,
    Terminated,
)


class Revocations(Middleware):
    """Honour :func:`~nightshift.common.revocation.revoke` in this worker process.

    Before a message runs, one ``EXISTS`` on its job's revocation key: a revoked
    job is skipped (:class:`~dramatiq.middleware.SkipMessage`) and recorded
    ``revoked``. While messages run, a thread polls their keys every
    *poll_interval_ms* (one ``MGET``; it sleeps while nothing runs) and raises
    :class:`~nightshift.common.revocation.Terminated` in the thread of each one
    revoked with ``terminate=True``.

    Must come early in the stack (right after ``AgeLimit``): a skipped message
    then never reaches the middleware that would mark it running.

    Parameters:
      poll_interval_ms: How often running messages are checked for a terminate request.
    """

    def __init__(self, *, poll_interval_ms: int = 200) -> None:
        self.poll_interval_s = poll_interval_ms / 1000
        #: message id → (thread id, message) of what this process runs now.
        self._running: dict[str, tuple[int, MessageProxy]] = {}
        self._lock = threading.Lock()
        self._busy = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keys = RedisKeys()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        self._keys = RedisKeys(broker.namespace)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, args=(broker,), name="nightshift-revocations", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        self._busy.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not isinstance(broker, RedisBroker):
            return
        if broker.client.exists(self._keys.revoked(message.message_id)):
            message.options[REVOKED_OPTION] = REVOKED_REASON
            raise SkipMessage(f"job {message.message_id} was revoked")
        with self._lock:
            self._running[message.message_id] = (threading.get_ident(), message)
            self._busy.set()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._running.pop(message.message_id, None)
            if not self._running:
                self._busy.clear()
            if message.options.get(REVOKED_OPTION) == TERMINATED_REASON and not isinstance(exception, Terminated):
                # Terminated just as it finished: withdraw the exception if it is still pending.
                _clear_thread_exception(threading.get_ident())
        if isinstance(exception, Terminated):
            message.options.setdefault(REVOKED_OPTION, TERMINATED_REASON)

    after_skip_message = after_process_message

    def _poll(self, broker: RedisBroker) -> None:
        while not self._stop.is_set():
            self._busy.wait()
            if self._stop.wait(self.poll_interval_s):
                return
            try:
                self._terminate_requested(broker)
            except Exception:
                broker.logger.warning("Checking revocations failed; retrying.", exc_info=True)

    def _terminate_requested(self, broker: RedisBroker) -> None:
        with self._lock:
            running = list(self._running.items())
        if not running:
            return
        values = broker.client.mget([self._keys.revoked(message_id) for message_id, _ in running])
        for (message_id, (thread_id, message)), raw in zip(running, values, strict=True):
            if raw is None or not Revocation.decode(message_id, raw).terminate:
                continue
            with self._lock:
                # Only if that thread still runs this message (it may have just finished).
                if self._running.pop(message_id, None) is None:
                    continue
                if not self._running:
                    self._busy.clear()
                message.options[REVOKED_OPTION] = TERMINATED_REASON
                broker.logger.warning("Terminating job %s in thread %d on request.", message_id, thread_id)
                _raise_in_thread(thread_id, Terminated)


def _raise_in_thread(thread_id: int, exception: type[BaseException]) -> None:
    """Raise *exception* in thread *thread_id* at its next bytecode (as Dramatiq's TimeLimit does)."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception))
    if done > 1:  # more than one thread state touched: undo, as the CPython docs ask
        _clear_thread_exception(thread_id)


def _clear_thread_exception(thread_id: int) -> None:
    """Withdraw an asynchronous exception set on *thread_id* that was not raised yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
