"""Passwords, secrets, redirects after login, cursors and trace ids: the small pieces of the ops service."""

from __future__ import annotations

import datetime as dt

import pytest

from nightshift.common.middleware.job_records import trace_id
from nightshift.common.records import JobEvent, merge
from nightshift.ops.jobs import InvalidJobId, parse_cursor, parse_job_id
from nightshift.ops.pages import _safe_next
from nightshift.ops.passwords import MIN_PASSWORD_CHARS, digest, hash_password, new_secret, verify_password


def test_passwords_are_argon2id_and_verified() -> None:
    hashed = hash_password("a long enough password")

    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a long enough password")
    assert not verify_password(hashed, "another password!")
    assert not verify_password("not a hash", "a long enough password")
    with pytest.raises(ValueError, match=str(MIN_PASSWORD_CHARS)):
        hash_password("short")


def test_secrets_are_random_and_stored_as_digests() -> None:
    first, second = new_secret("nso_"), new_secret("nso_")

    assert first != second and first.startswith("nso_") and len(first) > 40
    assert digest(first) == digest(first) != digest(second)
    assert len(digest(first)) == 64


@pytest.mark.parametrize(
    ("target", "followed"),
    [("/jobs?status=dead", "/jobs?status=dead"), ("//evil.example", "/"), ("https://evil.example", "/"), (None, "/")],
)
def test_only_local_paths_are_followed_after_login(target: str | None, followed: str) -> None:
    assert _safe_next(target) == followed


def test_job_ids_and_cursors_are_parsed_or_refused_by_name() -> None:
    assert str(parse_job_id(" 0b6d1c7e-0000-4000-8000-000000000001 ")) == "0b6d1c7e-0000-4000-8000-000000000001"
    with pytest.raises(InvalidJobId, match="'nope' is not a job id"):
        parse_job_id("nope")
    moment, key = parse_cursor("2026-11-28T10:00:00+00:00|0b6d1c7e-0000-4000-8000-000000000001")
    assert moment == dt.datetime(2026, 11, 28, 10, tzinfo=dt.UTC) and key.version == 4
    with pytest.raises(InvalidJobId, match="not a cursor"):
        parse_cursor("garbage")


def test_the_trace_id_comes_from_the_traceparent() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id({"trace_context": {"traceparent": parent}}) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id({}) is None
    assert trace_id({"trace_context": {"traceparent": "garbage"}}) is None


def test_merged_events_keep_the_trace_id_and_the_latest_failures_traceback() -> None:
    at = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    queued = JobEvent("m", "a", "q", "queued", at, trace_id="t" * 32)
    failed = JobEvent("m", "a", "q", "retrying", at, attempts=1, error="E: one", traceback="tb one")
    again = JobEvent("m", "a", "q", "dead", at, attempts=2, error="E: two", traceback="tb two")

    merged = merge(merge(queued, failed), again)

    assert (merged.trace_id, merged.error, merged.traceback) == ("t" * 32, "E: two", "tb two")
