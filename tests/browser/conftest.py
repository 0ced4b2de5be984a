"""Browser tests: Playwright for Python driving Debian's Chromium against the ops app served by uvicorn.

Playwright cannot download its own browsers here, so the tests use the
``chromium`` package at ``/usr/bin/chromium``; when it is missing, the setup
installs it with apt (as root) or stops, saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.ops.accounts import create_operator
from nightshift.ops.app import create_app
from nightshift.ops.context import OpsContext
from tests.support import ops_actors  # noqa: F401 - declares the test actors
from tests.support.ops import PASSWORD, ops_context, served

#: Debian's Chromium.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))

#: Flags for a headless Chromium in a container: no sandbox (root), no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]


def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt first if it is missing and we are root.

    Raises:
      pytest.UsageError: Chromium is missing and cannot be installed from here (says how).
    """
    if CHROMIUM.exists():
        return CHROMIUM
    how = "install it with: sudo apt-get update && sudo apt-get install -y chromium (or set CHROMIUM_PATH)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise pytest.UsageError(f"the browser tests need Chromium at {CHROMIUM}; {how}")
    print("\nChromium is missing: installing Debian's chromium package with apt-get (as root)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise pytest.UsageError(f"{' '.join(command)} failed ({done.stderr.strip()[-300:]}); {how}")
    if not CHROMIUM.exists():
        raise pytest.UsageError(f"apt installed chromium but {CHROMIUM} is still missing; {how}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def ctx(env: CommonSettings, broker: NightshiftRedisBroker, clean_db: Engine) -> OpsContext:
    create_operator_ctx = ops_context(env, broker, clean_db)
    create_operator(create_operator_ctx.sessions, "olga", "operator", PASSWORD)
    create_operator(create_operator_ctx.sessions, "victor", "viewer", PASSWORD)
    return create_operator_ctx


@pytest.fixture
def base_url(ctx: OpsContext) -> Iterator[str]:
    with served(create_app(ctx)) as url:
        yield url


@pytest.fixture
def page(browser: object, base_url: str) -> Iterator[object]:
    context = browser.new_context(base_url=base_url)  # type: ignore[attr-defined]
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()
