"""``nightshift up``'s banner: the ops service's hook creates the local operator and prints its password."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from nightshift.common.db.engine import make_session_factory
from nightshift.common.service import installed_services, load_object
from nightshift.common.settings import CommonSettings
from nightshift.ops.accounts import authenticate

pytestmark = pytest.mark.integration


def test_the_banner_hook_prints_the_dashboard_and_a_fresh_password_that_signs_in(
    env: CommonSettings, clean_db: Engine
) -> None:
    hooks = {name: spec.banner for name, spec in installed_services().items() if spec.banner}
    assert hooks == {"ops": "nightshift.ops.local:banner"}
    banner: Any = load_object(hooks["ops"])
    sessions = make_session_factory(clean_db)

    first = banner(sessions, "http://127.0.0.1:8120")
    second = banner(sessions, "http://127.0.0.1:8120")

    assert "http://127.0.0.1:8120/" in first[0]
    passwords = [lines[1].split(" / ", 1)[1].split()[0] for lines in (first, second)]
    assert passwords[0] != passwords[1]  # a new one each start, and only the last one works
    assert authenticate(sessions, "local", passwords[1]).role == "operator"
    with pytest.raises(Exception, match="wrong name or password"):
        authenticate(sessions, "local", passwords[0])
