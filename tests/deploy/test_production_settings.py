"""A production process of each service starts with what the deployment gives it.

Nothing here lists the variables production requires: each service's settings classes
(``settings_classes``) are loaded in production mode from exactly what a container of the
rendered manifests (or of ``docker-compose.yml`` with ``ENVIRONMENT=production``) receives
— the ConfigMap, its plain values, and a well-formed stand-in for each Secret reference —
and the checks made at first use are run too. A variable production refuses to run
without, and that no manifest supplies, fails here naming it.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from deploy.manifests import read_env_file
from nightshift.common.errors import ConfigurationError
from nightshift.common.gdpr.settings import GdprSettings
from nightshift.common.service import installed_services
from nightshift.common.settings import CommonSettings
from nightshift.common.storage.factory import StorageSettings
from tests.deploy.conftest import ROOT, compose, objects_of
from tests.deploy.settings_variables import settings_classes

SERVICES = installed_services()
#: The overlays that run with ``ENVIRONMENT=production`` (the ConfigMap's).
PRODUCTION_OVERLAYS = ("prod", "prod-hpa")
#: Containers of the manifests that run no service: what they read.
ONE_SHOT: Mapping[str, list[type[BaseSettings]]] = {"migrations": [CommonSettings]}


def stand_in(variable: str) -> str:
    """A valid, non-development value for a variable a Secret supplies."""
    if variable in ("MESSAGE_SIGNING_KEYS", "SEALING_KEYS"):
        return f"prod1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    if variable == "REDIS_URL":
        return "redis://redis.nightshift.svc:6379/0"
    if variable == "DATABASE_URL":
        return "postgresql://svc@postgres.nightshift.svc/nightshift"
    return secrets.token_urlsafe(32)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """The process environment replaced by *values* (and nothing else) for the block."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def production_refusals(classes: list[type[BaseSettings]], env: Mapping[str, str]) -> list[str]:
    """Why a process reading *classes* with *env* would refuse to start, or fail at first use; [] when it runs."""
    refusals = []
    with environment(env):
        for cls in classes:
            try:
                settings = cls(_env_file=None)  # type: ignore[call-arg]
            except ValidationError as error:
                prefix = str(cls.model_config.get("env_prefix", "") or "")
                refusals += [f"{prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()]
                continue
            refusals += _first_use_refusals(settings, env)
    return refusals


def _first_use_refusals(settings: BaseSettings, env: Mapping[str, str]) -> list[str]:
    """The production checks made when a setting is first used rather than when the process starts."""
    production = env.get("ENVIRONMENT") == "production"
    try:
        if isinstance(settings, GdprSettings):
            settings.key(env.get("ENVIRONMENT", "development"))
        local_storage = isinstance(settings, CommonSettings) and settings.storage_url.startswith("file:")
        # storage_from_settings: local links need their signing key in production.
        if production and local_storage and StorageSettings(_env_file=None).signing_key is None:  # type: ignore[call-arg]
            raise ConfigurationError("STORAGE_SIGNING_KEY must be set in production")
    except ConfigurationError as error:
        return [str(error)]
    return []


def container_env(container: dict[str, Any], config: Mapping[str, str]) -> dict[str, str]:
    """What a container of the manifests receives: the ConfigMap, then its own entries (Secrets by stand-ins)."""
    env = dict(config)
    for entry in container.get("env", []):
        env[entry["name"]] = entry["value"] if "value" in entry else stand_in(entry["name"])
    return env


def config_map(overlay: str) -> dict[str, str]:
    (config,) = [c for n, c in objects_of(overlay, "ConfigMap").items() if n.startswith("nightshift-config")]
    data: dict[str, str] = config["data"]
    return data


def pod_containers(overlay: str) -> Iterator[tuple[str, list[type[BaseSettings]], dict[str, Any]]]:
    """Every Nightshift container of *overlay*'s Deployments and Jobs, with the settings classes it reads."""
    for kind in ("Deployment", "Job"):
        for name, item in objects_of(overlay, kind).items():
            classes = settings_classes(SERVICES[name]) if name in SERVICES else ONE_SHOT.get(name)
            assert classes is not None, f"{kind} {name}: no service and no known one-shot job"
            for container in item["spec"]["template"]["spec"]["containers"]:
                yield f"{kind} {name}/{container['name']}", classes, container


def test_the_production_overlays_run_in_production() -> None:
    assert {config_map(overlay)["ENVIRONMENT"] for overlay in PRODUCTION_OVERLAYS} == {"production"}


@pytest.mark.parametrize("overlay", PRODUCTION_OVERLAYS)
def test_every_production_container_gets_every_setting_production_requires(overlay: str) -> None:
    config = config_map(overlay)
    containers = list(pod_containers(overlay))
    assert {name.split()[1].split("/")[0] for name, _, _ in containers} >= {*SERVICES, *ONE_SHOT}
    refused = {
        name: refusals
        for name, classes, container in containers
        if (refusals := production_refusals(classes, container_env(container, config)))
    }
    assert refused == {}, "a production pod would not start (add a Secret reference in deploy/pools.py)"


@pytest.mark.parametrize(
    ("service", "variable", "named"),
    [
        ("notifications", "NOTIFICATIONS_UNSUBSCRIBE_SECRET", "NOTIFICATIONS_UNSUBSCRIBE_SECRET"),
        ("users", "GDPR_PROOF_KEY", "GDPR_PROOF_KEY"),
        ("media", "MESSAGE_SIGNING_KEYS", "MESSAGE_SIGNING_KEYS"),
        ("scheduler", "SEALING_KEYS", "SEALING_KEYS"),
    ],
)
def test_a_production_secret_left_out_of_the_manifests_is_caught(service: str, variable: str, named: str) -> None:
    """The check above would have caught the omission: without the Secret reference, a refusal names it."""
    (container, *_) = [c for n, _, c in pod_containers("prod") if n.startswith(f"Deployment {service}/")]
    env = container_env(container, config_map("prod"))
    assert production_refusals(settings_classes(SERVICES[service]), env) == []
    del env[variable]
    refusals = production_refusals(settings_classes(SERVICES[service]), env)
    assert any(named in refusal for refusal in refusals), refusals


def compose_env(service: str) -> dict[str, str]:
    """A Compose service's environment with ``ENVIRONMENT=production``, each ``${VAR:?…}`` given a stand-in
    (``.env`` would) and each ``${VAR:-default}`` its default."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        return default[2:] if default and default.startswith(":-") else stand_in(name)

    raw = compose()["services"][service]["environment"]
    env = {name: re.sub(r"\$\{([A-Z_]+)(:[-?][^}]*)?\}", value, str(text)) for name, text in raw.items()}
    return {**env, "ENVIRONMENT": "production"}


@pytest.mark.parametrize("service", [*SERVICES, *ONE_SHOT])
def test_compose_supplies_what_production_requires(service: str) -> None:
    """``ENVIRONMENT=production`` in ``.env`` would start every container of the local stack."""
    classes = settings_classes(SERVICES[service]) if service in SERVICES else ONE_SHOT[service]
    assert production_refusals(classes, compose_env(service)) == []


def test_env_example_names_every_secret_compose_asks_for() -> None:
    asked = set(re.findall(r"\$\{([A-Z_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    example = read_env_file(ROOT / ".env.example")
    assert asked <= set(example), asked - set(example)
    assert all(example[name] == "" for name in asked), "a secret has a value in .env.example"
