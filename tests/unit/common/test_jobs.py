"""The framework-free pieces of job progress: values, limits and the server-sent events' bytes."""

from __future__ import annotations

import datetime as dt

import pytest

from nightshift.common.jobs import FINAL_EVENT_ID, JobStatus, JobUpdate, Progress, format_sse, sse_stream
from nightshift.common.jobs.store import RESULT_MAX_BYTES, encode_result
from nightshift.common.middleware.time_limits import TimedOut, timed_out


def test_progress_fraction_is_bounded_and_unknown_without_a_total() -> None:
    assert Progress(5, 20).fraction == 0.25
    assert Progress(5).fraction is None
    assert Progress(0, 0).fraction is None
    assert Progress(3, 4, "copying").as_dict()["note"] == "copying"


def test_a_result_is_small_json() -> None:
    assert encode_result({"key": "exports/a.csv.gz", "at": dt.date(2026, 1, 2)}) == (
        '{"key":"exports/a.csv.gz","at":"2026-01-02"}'
    )
    with pytest.raises(ValueError, match="at most 16384 bytes"):
        encode_result({"blob": "x" * RESULT_MAX_BYTES})
    with pytest.raises(ValueError, match="must be JSON"):
        encode_result({"thing": object()})


def test_server_sent_events_bytes() -> None:
    progress = JobUpdate("progress", {"done": 1, "total": 2}, "1700000000000-0")
    final = JobUpdate("status", {"status": "done"}, FINAL_EVENT_ID)
    snapshot = JobUpdate("status", {"status": "running"})

    assert format_sse(progress) == b'id: 1700000000000-0\nevent: progress\ndata: {"done":1,"total":2}\n\n'
    assert format_sse(snapshot) == b'event: status\ndata: {"status":"running"}\n\n'  # no id: not a resume point
    assert format_sse(None) == b": keep-alive\n\n"
    assert list(sse_stream(iter([progress, None, final]), retry_ms=500)) == [
        b"retry: 500\n\n",
        format_sse(progress),
        b": keep-alive\n\n",
        b'id: final\nevent: status\ndata: {"status":"done"}\n\n',
    ]


def test_a_jobs_tenant_is_its_queues_service() -> None:
    assert JobStatus("j", "done", "export_content", "posts_high").tenant == "posts"
    assert JobStatus("j", "queued", None, "media_low").tenant == "media"
    assert JobStatus("j", "running", None, None).tenant is None


def test_timed_out_names_its_limit_and_is_an_interrupt() -> None:
    error = timed_out(1500.0)()
    assert isinstance(error, TimedOut) and not isinstance(error, Exception)
    assert f"{type(error).__name__}: {error}" == "TimedOut: stopped after its time limit of 1.5 s"
    assert timed_out(1500.0) is timed_out(1500.0)
