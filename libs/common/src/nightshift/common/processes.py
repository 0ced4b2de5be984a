"""The process toolkit: stopping on signals, stopping children, free ports, waiting for a condition."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Literal, TypeVar

T = TypeVar("T")

#: The signals that ask a Nightshift process to stop: a deploy's SIGTERM, a terminal's Ctrl-C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(signals: Iterable[int] = STOP_SIGNALS) -> threading.Event:
    """Install handlers for *signals* (SIGTERM and SIGINT) that set the returned event.

    The process then stops when it chooses to, by waiting on the event, instead of
    being interrupted wherever it happens to be. Call it from the main thread.

    Returns:
      An event set when one of *signals* arrives.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in signals:
        signal.signal(sig, on_signal)
    return stop


def stop_processes(
    processes: Iterable[subprocess.Popen[Any]], *, grace_s: float, sig: int = signal.SIGTERM
) -> list[subprocess.Popen[Any]]:
    """Send *sig* to every running process, give them *grace_s* in all, kill the rest.

    Returns:
      The processes that had to be killed.
    """
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    deadline = time.monotonic() + grace_s
    killed = []
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            killed.append(process)
    return killed


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on *host* that nothing listens on now (the system picks it).

    Returns:
      The port; another process may take it before it is used, which the caller accepts.
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether *port* on *host* can be bound now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def wait_for(
    predicate: Callable[[], T | Literal[False] | None], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll *predicate* until it returns something truthy; return that.

    Parameters:
      predicate: Called every *interval* seconds; it may raise to stop the wait at once.
      timeout: Seconds to wait at the most.
      interval: Seconds between two calls.
      what: What is awaited, for the error message.

    Raises:
      TimeoutError: After *timeout* seconds, naming *what* was awaited.

    Returns:
      The predicate's first truthy value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)
