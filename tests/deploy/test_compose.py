"""``docker-compose.yml``: valid against the Compose specification, health-checked, no secret in it."""

from __future__ import annotations

import re
import subprocess

from tests.deploy.conftest import ROOT, compose, tool

#: Containers that run once and exit: nothing to health-check, waited for by completion.
ONE_SHOT = {"migrations", "minio-bucket"}


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_long_running_container_is_health_checked_and_waited_for_by_condition() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else None
            assert condition["condition"] in ({expected} if expected else {"service_healthy", "service_started"})


def test_the_services_wait_for_the_migrations() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if service.get("image", "").startswith("nightshift/") and name != "migrations":
            assert service["depends_on"]["migrations"]["condition"] == "service_completed_successfully", name


def test_the_broker_redis_keeps_its_data_and_never_evicts() -> None:
    command = compose()["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_two_schedulers_run_from_the_same_image() -> None:
    services = compose()["services"]
    schedulers = [name for name, s in services.items() if s.get("image", "").startswith("nightshift/scheduler:")]
    assert len(schedulers) == 2


def test_the_nightshift_containers_run_unprivileged_on_a_read_only_root() -> None:
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("nightshift/"):
            assert service["read_only"] is True and service["tmpfs"] == ["/tmp"], name
            assert service["user"].split(":")[0] not in ("0", "root"), name
            assert service["cap_drop"] == ["ALL"], name


def test_no_secret_is_committed() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for match in re.finditer(r"^\s*[A-Z_]*(PASSWORD|SECRET|AUTH)[A-Z_]*:\s*(\S+)", text, re.MULTILINE):
        assert match.group(2).startswith("${"), match.group(0)
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert all(value == "" for key, value in example.items() if "PASSWORD" in key)
    # Every ${VARIABLE} the compose file reads is documented in .env.example.
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= set(example), used - set(example)
