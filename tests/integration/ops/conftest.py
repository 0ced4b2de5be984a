"""Fixtures of the ops tests: the application on the test servers, operators and tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.ops.accounts import create_operator, create_token
from nightshift.ops.app import create_app
from nightshift.ops.context import OpsContext
from tests.support import ops_actors  # noqa: F401 - declares the test actors
from tests.support.ops import PASSWORD, ops_context


@pytest.fixture
def ctx(env: CommonSettings, broker: NightshiftRedisBroker, clean_db: Engine) -> OpsContext:
    return ops_context(env, broker, clean_db)


@pytest.fixture
def client(ctx: OpsContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


@pytest.fixture
def tokens(ctx: OpsContext) -> dict[str, str]:
    """A bearer token per scope: ``read``, ``act`` (with read) and ``publish``."""
    return {
        "read": create_token(ctx.sessions, "reader", ["read"], by="test"),
        "act": create_token(ctx.sessions, "actor", ["read", "act"], by="test"),
        "publish": create_token(ctx.sessions, "publisher", ["publish"], by="test"),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def operator(ctx: OpsContext) -> str:
    create_operator(ctx.sessions, "olga", "operator", PASSWORD)
    return "olga"


@pytest.fixture
def viewer(ctx: OpsContext) -> str:
    create_operator(ctx.sessions, "victor", "viewer", PASSWORD)
    return "victor"
