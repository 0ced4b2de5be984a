"""Job records outlasting the memory buffer while PostgreSQL is unreachable: spilled, or back-pressure."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from nightshift.common.db.engine import make_engine
from nightshift.common.processes import wait_for
from nightshift.common.records import JobEvent, RecordWriter
from nightshift.common.records_spill import RecordSpill
from tests.support.tcp_proxy import TcpProxy, postgres_target, through_proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(postgres_target(database_url)).start()
    yield proxy
    proxy.close()


def _event(n: int) -> JobEvent:
    now = dt.datetime.now(dt.UTC)
    return JobEvent(
        message_id=str(uuid.UUID(int=n + 1)), actor="spilled", queue="chaos_high", status="done", at=now, attempts=1
    )


def _recorded(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM job_records WHERE actor = 'spilled'")).scalar_one())


def test_records_beyond_the_buffer_are_spilled_to_disk_and_written_back(
    clean_db: Engine, database_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    spill = RecordSpill(tmp_path / "spill")
    engine = make_engine(through_proxy(database_url, proxy), pool_size=1)
    writer = RecordWriter(engine, flush_interval_ms=50, max_buffered=100, spill=spill)
    writer.flush()  # connects once while PostgreSQL answers
    proxy.sever()
    for n in range(1000):
        writer.job(_event(n))
    wait_for(lambda: spill.count() >= 900, timeout=60, what="900 records spilled")
    assert len(writer._jobs) <= 100 + 50  # the memory buffer stays bounded
    assert spill.count() + writer.pending() == 1000

    proxy.heal()
    wait_for(lambda: _recorded(clean_db) == 1000, timeout=60, what="every record written")
    wait_for(lambda: not spill.files(), timeout=10, what="the spill folder emptied")
    writer.close()
    engine.dispose()


def test_without_a_spill_folder_recording_waits_for_room(clean_db: Engine, database_url: str, proxy: TcpProxy) -> None:
    engine = make_engine(through_proxy(database_url, proxy), pool_size=1)
    writer = RecordWriter(engine, flush_interval_ms=50, max_buffered=100)
    writer.flush()
    proxy.sever()
    recorded = []

    def record() -> None:
        for n in range(300):
            writer.job(_event(n))
            recorded.append(n)

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    wait_for(lambda: len(recorded) >= 100, timeout=30, what="the buffer filled")
    recorder.join(timeout=2)
    assert recorder.is_alive() and len(recorded) <= 102  # blocked: back-pressure, nothing dropped

    proxy.heal()
    recorder.join(timeout=60)
    assert not recorder.is_alive()
    wait_for(lambda: _recorded(clean_db) == 300, timeout=60, what="every record written")
    writer.close()
    engine.dispose()
