"""Count a process's Redis round trips from inside it (a benchmark's probe).

``INFO commandstats`` counts commands, including those a Lua script runs and
each command of a pipeline; a *call* here is one request sent by the client
(a command, a script, a whole pipeline), counted where redis-py sends it. When
:data:`COUNT_FILE_ENV` names a directory, each process writes its total there
every :data:`WRITE_INTERVAL_S` when it changed, in a file named after its pid. The
driver reads the files a little after its window ends (:data:`WRITE_INTERVAL_S`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

#: The directory the counts go to; unset, nothing is counted.
COUNT_FILE_ENV = "BENCH_REDIS_CALLS_DIR"

#: How often a process writes its count.
WRITE_INTERVAL_S = 0.5


def install() -> None:
    """Count this process's Redis calls, if :data:`COUNT_FILE_ENV` is set."""
    directory = os.environ.get(COUNT_FILE_ENV)
    if not directory:
        return
    from redis.connection import AbstractConnection

    calls = [0]
    original = AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        calls[0] += 1
        original(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    path = Path(directory) / f"{os.getpid()}.count"

    def write() -> None:
        written = -1
        while True:
            if calls[0] != written:  # an idle process costs nothing here
                written = calls[0]
                path.write_text(str(written))
            time.sleep(WRITE_INTERVAL_S)

    threading.Thread(target=write, name="bench-redis-calls", daemon=True).start()


def read(directory: Path) -> int:
    """The calls counted so far by every process writing to *directory*."""
    total = 0
    for path in directory.glob("*.count"):
        with contextlib.suppress(OSError, ValueError):  # a file being written
            total += int(path.read_text() or 0)
    return total
