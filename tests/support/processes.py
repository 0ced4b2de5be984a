"""Running ``nightshift`` commands and service processes from tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from nightshift.common.processes import stop_processes

#: The repository root, put on PYTHONPATH so children can import ``tests.support``.
REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment (with the test settings) plus *extra*, importable from the repo root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def nightshift(
    *args: str, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``nightshift ARGS`` to completion (with *env* added) and return what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "nightshift.common.cli", *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def service_process(
    args: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python ARGS`` in the background; SIGTERM (then SIGKILL) it on exit."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, *args], env=child_env(env), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_processes([process], grace_s=20)
