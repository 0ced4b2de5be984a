"""Both storage backends, the S3 one over HTTP against moto's server mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nightshift.common.storage import Storage, open_storage
from tests.integration.storage.s3server import moto_server, new_bucket


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
    if request.param == "local":
        return open_storage(f"file://{tmp_path / 'storage'}", signing_key="secret")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = new_bucket(endpoint, monkeypatch)
    return open_storage(f"s3://{bucket}/env-a?endpoint_url={endpoint}&region_name=us-east-1")
