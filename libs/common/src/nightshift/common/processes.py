"""Stopping child processes: ask nicely, wait out a grace period, then kill."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterable
from typing import Any


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
