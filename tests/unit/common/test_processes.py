"""The process toolkit: signals that stop a process, free ports, waiting for a condition."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from nightshift.common.processes import free_port, port_is_free, stop_processes, wait_for

#: A process that waits for the event of stop_on_signals, then says so and exits 0.
WAITS_FOR_STOP = (
    "from nightshift.common.processes import stop_on_signals\n"
    "stop = stop_on_signals()\n"
    "print('ready', flush=True)\n"
    "stop.wait()\n"
    "print('stopped', flush=True)\n"
)

#: A process that ignores SIGTERM.
IGNORES_SIGTERM = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)\n"
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_on_signals_sets_the_event_and_lets_the_process_finish(sig: signal.Signals) -> None:
    process = subprocess.Popen([sys.executable, "-c", WAITS_FOR_STOP], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(sig)
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == "stopped\n"
    finally:
        stop_processes([process], grace_s=1)


def test_stop_processes_kills_only_the_process_that_ignores_sigterm() -> None:
    stubborn = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True)
    polite = subprocess.Popen([sys.executable, "-c", "import time\ntime.sleep(60)\n"])
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == "ready\n"

    assert stop_processes([stubborn, polite], grace_s=1) == [stubborn]
    assert stubborn.returncode == -signal.SIGKILL
    assert polite.returncode == -signal.SIGTERM


def test_free_port_can_be_bound_and_a_listened_port_is_not_free() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free(port)


def test_wait_for_returns_the_first_truthy_value() -> None:
    answers = iter([None, False, 0, "found", "later"])
    assert wait_for(lambda: next(answers), interval=0) == "found"


def test_wait_for_names_what_it_waited_for_when_it_times_out() -> None:
    with pytest.raises(TimeoutError, match=r"timed out after 0.05 s waiting for the moon"):
        wait_for(lambda: None, timeout=0.05, what="the moon")


def test_wait_for_stops_at_once_when_the_predicate_raises() -> None:
    def broken() -> bool:
        raise RuntimeError("server exited")

    with pytest.raises(RuntimeError, match="server exited"):
        wait_for(broken, timeout=60)
