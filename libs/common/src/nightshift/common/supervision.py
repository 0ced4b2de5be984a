"""Supervised child processes: restarted when they die, with a back-off against crash loops.

Used by the worker pool (one child per worker process) and by ``nightshift up``
(one child per service).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nightshift.common.memory_bound import RECYCLE_EXIT_CODE
from nightshift.common.processes import stop_processes

#: Longest wait before restarting a child that keeps dying (0 s, 1 s, 3 s, 7 s … at most this).
MAX_RESTART_DELAY_S = 30.0

#: A child that dies after running this long is restarted at once, its back-off forgotten.
STABLE_AFTER_S = 120.0


def restart_delay(restarts: int) -> float:
    """Seconds a child restarted *restarts* times in a row must have run before it is restarted again."""
    return min(2.0**restarts - 1, MAX_RESTART_DELAY_S)


@dataclass
class SupervisedChild:
    """One child process, restarted by :meth:`restart_if_due` after it dies.

    Parameters:
      name: How logs and messages name it.
      command: The program and its arguments.
      env: Its environment.
      log_path: A file its output is appended to (inherited from this process without one).
      new_session: Start it in a session of its own, so that a terminal's Ctrl-C reaches only
        the supervisor, which then stops it in order.
    """

    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    log_path: Path | None = None
    new_session: bool = False
    process: subprocess.Popen[bytes] | None = None
    #: Restarts since it last ran for :data:`STABLE_AFTER_S`.
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        """Start the process (again)."""
        if self.log_path is None:
            self.process = subprocess.Popen(self.command, env=self.env, start_new_session=self.new_session)
        else:
            with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
                self.process = subprocess.Popen(
                    self.command,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=self.new_session,
                )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code of its last run (None while it runs or before it started)."""
        return None if self.process is None else self.process.poll()

    def restart_if_due(self, now: float | None = None) -> bool:
        """Restart the process if it has exited and its back-off has passed.

        A child that had run for :data:`STABLE_AFTER_S` was not crash-looping: its
        back-off is forgotten and it is restarted at once. So is one that exited with
        :data:`RECYCLE_EXIT_CODE` (the memory-bound profile replacing a process on
        purpose), without counting as a restart.

        Parameters:
          now: The current ``time.monotonic()`` (read when not given).

        Returns:
          Whether it was restarted now.
        """
        if self.alive():
            return False
        if self.returncode == RECYCLE_EXIT_CODE:
            self.start()
            return True
        ran_for = (time.monotonic() if now is None else now) - self.started_at
        if ran_for > STABLE_AFTER_S:
            self.restarts = 0
        if ran_for < restart_delay(self.restarts):
            return False
        self.restarts += 1
        self.start()
        return True


def restart_dead(children: Iterable[SupervisedChild]) -> list[tuple[SupervisedChild, int | None]]:
    """Restart those of *children* that exited and whose back-off has passed.

    Returns:
      Each child restarted now, with the exit code of the run that ended.
    """
    restarted = []
    for child in children:
        code = child.returncode
        if child.restart_if_due():
            restarted.append((child, code))
    return restarted


def stop_children(children: Sequence[SupervisedChild], *, grace_s: float) -> list[SupervisedChild]:
    """Ask every running child to stop (SIGTERM); kill those still running after *grace_s*.

    Returns:
      The children that had to be killed.
    """
    processes = [child.process for child in children if child.process is not None]
    killed = stop_processes(processes, grace_s=grace_s)
    return [child for child in children if child.process in killed]
