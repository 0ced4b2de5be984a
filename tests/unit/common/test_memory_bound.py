"""The memory-bound profile's figures: from the spec, overridden by the service's variables."""

from __future__ import annotations

import os
import sys

import pytest

from nightshift.common.memory_bound import RECYCLE_EXIT_CODE, MemoryBound, memory_bound_profile, resident_memory_bytes
from nightshift.common.supervision import SupervisedChild


def test_a_service_without_the_profile_stays_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPORTS_MEMORY_BOUND", raising=False)
    assert memory_bound_profile("exports", None) is None


def test_the_spec_declares_it_and_the_environment_overrides_its_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    declared = MemoryBound(max_tasks=50, max_memory_mb=512, processes=2)
    monkeypatch.setenv("EXPORTS_MAX_TASKS_PER_PROCESS", "7")
    monkeypatch.setenv("EXPORTS_MAX_MEMORY_MB", "256")
    assert memory_bound_profile("exports", declared) == MemoryBound(max_tasks=7, max_memory_mb=256, processes=2)
    monkeypatch.setenv("EXPORTS_MEMORY_BOUND", "false")
    assert memory_bound_profile("exports", declared) is None


def test_the_environment_can_give_the_profile_to_any_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTS_MEMORY_BOUND", "true")
    monkeypatch.setenv("POSTS_PROCESSES", "3")
    profile = memory_bound_profile("posts", None)
    assert profile is not None and profile.processes == 3 and profile.max_tasks == MemoryBound().max_tasks


def test_a_malformed_variable_stops_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXPORTS_MAX_MEMORY_MB", "lots")
    with pytest.raises(SystemExit):
        memory_bound_profile("exports", MemoryBound())
    assert "EXPORTS_MAX_MEMORY_MB" in capsys.readouterr().err


def test_figures_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid memory-bound profile"):
        MemoryBound(max_tasks=0)
    assert MemoryBound(max_memory_mb=100).recycle_memory_bytes == 80 * 2**20


def test_resident_memory_is_measured() -> None:
    before = resident_memory_bytes()
    block = bytearray(64 * 2**20)
    assert resident_memory_bytes() - before >= 60 * 2**20
    del block


def test_a_recycled_child_is_restarted_at_once_without_counting_as_a_crash() -> None:
    child = SupervisedChild("recycled", [sys.executable, "-c", f"raise SystemExit({RECYCLE_EXIT_CODE})"], os.environ)
    child.start()
    assert child.process is not None
    child.process.wait(timeout=30)
    for _ in range(3):
        assert child.restart_if_due(now=child.started_at)
        child.process.wait(timeout=30)
    assert child.restarts == 0
