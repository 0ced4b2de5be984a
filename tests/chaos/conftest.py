"""Fixtures of the chaos suite: an empty effects table and run counters."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import Engine

from nightshift.common.settings import CommonSettings
from tests.support.chaos_service import PIDS_KEY, RUNS_KEY, ensure_tables


@pytest.fixture
def effects(env: CommonSettings, clean_db: Engine) -> Engine:
    """The database engine, with ``chaos_effects`` created and empty and the run counters reset."""
    ensure_tables(clean_db)
    redis.Redis.from_url(env.redis_url).delete(RUNS_KEY, PIDS_KEY)
    return clean_db
