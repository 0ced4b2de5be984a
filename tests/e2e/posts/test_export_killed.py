"""A worker killed with SIGKILL mid-export: another worker finishes it from the part log, not from zero."""

from __future__ import annotations

import csv
import gzip
import io
import signal
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, text

from nightshift.common import runtime
from nightshift.common.events import publish
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from tests.support.processes import service_process

pytestmark = pytest.mark.e2e

#: Rows exported: enough for a hundred parts.
ROWS = 200_000
#: Small parts, so the export is cut into many and a kill lands between two of them.
PART_BYTES = 64 * 1024


def _parts(engine: Engine) -> list[tuple[int, int, int]]:
    with engine.connect() as connection:
        return [
            (row.number, row.rows, row.worker_pid)
            for row in connection.execute(text("SELECT number, rows, worker_pid FROM export_parts ORDER BY number"))
        ]


def _status(broker: NightshiftRedisBroker, engine: Engine, job_id: str) -> str | None:
    broker.record_writer.flush()
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT status FROM job_records WHERE message_id = CAST(:id AS uuid)"), {"id": job_id}
        ).scalar()


def test_an_export_killed_mid_way_completes_on_another_worker_from_its_last_part(
    env: CommonSettings,
    redis_client: redis.Redis[bytes],
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    tmp_path: Path,
) -> None:
    with clean_db.begin() as connection:
        author = connection.execute(
            text("INSERT INTO users (email, display_name) VALUES ('e@b.test', 'E') RETURNING id")
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO posts (author_id, body, created_at) "
                "SELECT :a, md5(i::text) || ' ' || md5((i * 7)::text) || ', ' || md5((i * 13)::text) || "
                "E'\\n' || md5((i * 31)::text), now() - make_interval(secs => :n - i) "
                "FROM generate_series(1, :n) i"
            ),
            {"a": author, "n": ROWS},
        )
    settings = {"POSTS_EXPORT_PART_BYTES": str(PART_BYTES)}
    command = ["-m", "nightshift.common.cli", "worker", "posts", "--health-port", "0"]

    with service_process(command, tmp_path / "first.log", settings) as first:
        [message] = publish("export.requested", {"requester_id": author, "what": "own_posts", "format": "csv"})
        wait_for(lambda: len(_parts(clean_db)) >= 5, timeout=60, interval=0.01, what="five parts uploaded")
        with service_process(command, tmp_path / "second.log", settings) as second:
            first.send_signal(signal.SIGKILL)
            first.wait()
            wait_for(lambda: _status(broker, clean_db, message.message_id) == "done", timeout=120, what="export done")

    parts = _parts(clean_db)
    by_first = [number for number, _, pid in parts if pid == first.pid]
    by_second = [number for number, _, pid in parts if pid == second.pid]
    assert by_first and by_second
    assert by_first == list(range(1, len(by_first) + 1)), "the killed worker's parts are the first ones, kept"
    assert by_second == list(range(len(by_first) + 1, len(parts) + 1))
    assert len(by_second) < len(parts), "fewer parts written after the kill than a restart from zero needs"
    assert sum(rows for _, rows, _ in parts) == ROWS

    with clean_db.connect() as connection:
        key = connection.execute(text("SELECT storage_key FROM exports")).scalar_one()
        connection.execute(text("SET TIME ZONE 'UTC'"))
        expected = [
            [str(row.id), row.created_at, row.updated_at or "", row.language or "", row.body]
            for row in connection.execute(
                text("SELECT id, created_at::text, updated_at::text, language, body FROM posts ORDER BY id")
            )
        ]
    exported = list(csv.reader(io.StringIO(gzip.decompress(runtime.storage().get(key)).decode(), newline="")))
    assert exported[0] == ["post_id", "created_at", "updated_at", "language", "body"]
    assert exported[1:] == expected
    print(f"{len(parts)} parts: {len(by_first)} before the kill, {len(by_second)} after")
