"""Supervised children: restarted when they die, with one back-off, stopped in order."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightshift.common.processes import wait_for
from nightshift.common.supervision import (
    MAX_RESTART_DELAY_S,
    STABLE_AFTER_S,
    SupervisedChild,
    restart_dead,
    restart_delay,
    stop_children,
)

EXITS_3 = [sys.executable, "-c", "raise SystemExit(3)"]
SLEEPS = [sys.executable, "-c", "import time\ntime.sleep(60)\n"]
IGNORES_SIGTERM = [
    sys.executable,
    "-c",
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)\n",
]


@pytest.fixture
def children() -> Iterator[list[SupervisedChild]]:
    """Children a test starts, all stopped afterwards."""
    started: list[SupervisedChild] = []
    yield started
    stop_children(started, grace_s=1)


def dead(child: SupervisedChild) -> SupervisedChild:
    assert child.process is not None
    child.process.wait(timeout=30)
    return child


def test_the_back_off_grows_with_restarts_up_to_its_limit() -> None:
    assert [restart_delay(n) for n in range(7)] == [0, 1, 3, 7, 15, 30, 30]
    assert restart_delay(50) == MAX_RESTART_DELAY_S


def test_a_child_that_exits_is_restarted_at_once_then_after_its_back_off(children: list[SupervisedChild]) -> None:
    child = SupervisedChild("crasher", EXITS_3, dict(os.environ))
    children.append(child)
    child.start()
    first = dead(child).process

    assert restart_dead([child]) == [(child, 3)]
    assert child.process is not first and child.restarts == 1

    dead(child)
    assert not child.restart_if_due(now=child.started_at + 0.5)
    assert child.restart_if_due(now=child.started_at + 1.0)
    assert child.restarts == 2


def test_a_child_that_ran_fine_for_a_while_forgets_its_back_off(children: list[SupervisedChild]) -> None:
    child = SupervisedChild("crasher", EXITS_3, dict(os.environ), restarts=5)
    children.append(child)
    child.start()
    dead(child)

    assert not child.restart_if_due(now=child.started_at + restart_delay(5) - 1)
    assert child.restart_if_due(now=child.started_at + STABLE_AFTER_S + 1)
    assert child.restarts == 1


def test_a_running_child_is_not_restarted(children: list[SupervisedChild]) -> None:
    child = SupervisedChild("sleeper", SLEEPS, dict(os.environ))
    children.append(child)
    child.start()

    assert child.alive() and child.returncode is None
    assert restart_dead([child]) == []
    assert child.restarts == 0


def test_output_goes_to_the_log_and_a_new_session_is_its_own(children: list[SupervisedChild], tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("earlier run\n")
    child = SupervisedChild("stubborn", IGNORES_SIGTERM, dict(os.environ), log_path=log, new_session=True)
    children.append(child)
    child.start()

    wait_for(lambda: log.read_text() == "earlier run\nready\n", what="the child's line in its log")
    assert child.process is not None
    assert os.getsid(child.process.pid) == child.process.pid != os.getsid(0)


def test_stop_children_kills_only_those_that_outlast_the_grace(children: list[SupervisedChild], tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    stubborn = SupervisedChild("stubborn", IGNORES_SIGTERM, dict(os.environ), log_path=log)
    polite = SupervisedChild("polite", SLEEPS, dict(os.environ))
    never_started = SupervisedChild("never", SLEEPS, dict(os.environ))
    for child in (stubborn, polite):
        children.append(child)
        child.start()
    wait_for(lambda: log.read_text() == "ready\n", what="the stubborn child to ignore SIGTERM")

    assert stop_children([stubborn, polite, never_started], grace_s=1) == [stubborn]
    assert not stubborn.alive() and not polite.alive()
