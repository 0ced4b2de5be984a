"""The media actors end to end, on each storage backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import nightshift.media.actors  # noqa: F401 - declares the actors
from nightshift.common import runtime
from nightshift.common.contracts.media import PROCESS_MEDIA_UPLOAD
from nightshift.common.db.models import JobRecord
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.common.storage import Storage
from nightshift.media.models import Media
from tests.integration.storage.s3server import moto_server, new_bucket

#: The byte limit of the tests: small, so an oversized upload is cheap to make, and above
#: the PNG metadata chunk limit, so an oversized chunk is refused for itself.
TEST_MAX_BYTES = 2_000_000


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def media_env(
    request: pytest.FixtureRequest, env: CommonSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CommonSettings]:
    """The test settings, with storage on a local folder or on S3 (moto over HTTP)."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = new_bucket(endpoint, monkeypatch)
        monkeypatch.setenv("STORAGE_URL", f"s3://{bucket}?endpoint_url={endpoint}&region_name=us-east-1")
    monkeypatch.setenv("MEDIA_MAX_BYTES", str(TEST_MAX_BYTES))
    runtime.reset()
    yield runtime.settings()
    runtime.reset()


@dataclass
class Uploads:
    """Uploads the way the API makes them: the file in storage, a row, then ``media.uploaded``."""

    engine: Engine
    storage: Storage

    def add(self, data: bytes, *, name: str = "photo.jpg", post_id: int | None = None) -> int:
        with Session(self.engine) as session, session.begin():
            media = Media(owner_id=1, post_id=post_id, original_key="")
            session.add(media)
            session.flush()
            media.original_key = f"uploads/{media.id}/{name}"
            self.storage.put(media.original_key, data)
            return media.id

    def publish(self, media_id: int) -> str:
        return publish("media.uploaded", {"media_id": media_id})[0].message_id

    def row(self, media_id: int) -> Media | None:
        with Session(self.engine) as session:
            return session.get(Media, media_id)


@pytest.fixture
def uploads(media_env: CommonSettings, broker: NightshiftRedisBroker, clean_db: Engine) -> Uploads:
    return Uploads(clean_db, runtime.storage())


@pytest.fixture
def media_worker(broker: NightshiftRedisBroker, run_worker: Any) -> Any:
    """One worker thread on the media queues, as in the CPU-bound profile."""
    return run_worker({PROCESS_MEDIA_UPLOAD.queue_name, "media_low"}, threads=1)


def wait_for_jobs(broker: NightshiftRedisBroker, engine: Engine, message_ids: list[str]) -> dict[str, JobRecord]:
    """Wait until every message is done or dead; return their job records."""

    def finished() -> dict[str, JobRecord] | None:
        broker.record_writer.flush()
        with Session(engine) as session:
            records = session.scalars(select(JobRecord).where(JobRecord.message_id.in_(message_ids))).all()
        by_id = {str(record.message_id): record for record in records}
        if len(by_id) == len(message_ids) and all(r.status in ("done", "dead") for r in by_id.values()):
            return by_id
        return None

    return wait_for(finished, timeout=30, what=f"{len(message_ids)} media jobs to finish")
