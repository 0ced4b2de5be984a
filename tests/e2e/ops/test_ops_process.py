"""``nightshift run ops`` as a real process: probes, login page, metrics, and a clean stop on SIGTERM."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from nightshift.common.processes import free_port, wait_for
from nightshift.common.settings import CommonSettings
from tests.support.processes import service_process

pytestmark = pytest.mark.e2e


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def test_the_ops_process_serves_the_dashboard_and_stops_on_sigterm(env: CommonSettings, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with service_process(
        ["-m", "nightshift.common.cli", "run", "ops", "--health-port", str(port)], tmp_path / "ops.log"
    ) as process:
        wait_for(lambda: _get(f"{base}/readyz")[0] == 200, timeout=30, what="ops ready")

        login = _get(f"{base}/login")
        metrics = _get(f"{base}/metrics")
        anonymous = _get(f"{base}/api/overview")

        assert login[0] == 200 and 'name="password"' in login[1]
        assert metrics[0] == 200 and 'nightshift_queue_messages{queue="users_high",state="ready"}' in metrics[1]
        assert anonymous[0] == 401
        assert _get(f"{base}/static/vendor/uPlot.iife.min.js")[0] == 200
    assert process.returncode == 0
