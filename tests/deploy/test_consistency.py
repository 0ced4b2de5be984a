"""Every installed service is deployed, and the deployment agrees with the service's own code.

Derived from the ``nightshift.services`` entry points and the settings classes only: a
service added to the workspace without its Dockerfile, Compose service or Deployment
fails here, and so does a variable nothing reads or a required one missing.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from deploy.manifests import CONFIG_ENV, read_env_file
from deploy.pools import SERVICES as DEPLOYED
from nightshift.common.service import ServiceSpec, installed_services
from nightshift.common.settings import CommonSettings
from tests.deploy.conftest import OVERLAYS, ROOT, compose, objects_of
from tests.deploy.settings_variables import LIBRARY_VARIABLES, service_variables, variables

SERVICES = installed_services()
IDS = list(SERVICES)


def container(overlay: str, name: str) -> dict[str, Any]:
    deployments = objects_of(overlay, "Deployment")
    assert name in deployments, f"no Deployment {name} in {overlay}"
    first: dict[str, Any] = deployments[name]["spec"]["template"]["spec"]["containers"][0]
    return first


def config_map_keys(overlay: str) -> set[str]:
    (config,) = [c for n, c in objects_of(overlay, "ConfigMap").items() if n.startswith("nightshift-config")]
    return set(config["data"])


def cpus(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_every_deployed_service_is_a_service_of_the_workspace() -> None:
    """The deployment declares no service the workspace has not got (installed or being merged)."""
    folders = {path.parent.name for path in ROOT.glob("services/*/pyproject.toml")}
    pending = {path.parent.name for path in ROOT.glob("deploy/pending/*/Dockerfile")}
    assert {service.name for service in DEPLOYED} <= folders | pending


@pytest.mark.parametrize("spec", SERVICES.values(), ids=IDS)
def test_each_service_has_a_dockerfile_a_compose_service_and_a_deployment(spec: ServiceSpec) -> None:
    assert (ROOT / "services" / spec.name / "Dockerfile").is_file()
    service = compose()["services"].get(spec.name)
    assert service is not None, f"no Compose service {spec.name}"
    assert service["build"]["dockerfile"] == f"services/{spec.name}/Dockerfile"
    assert f"http://127.0.0.1:{spec.health_port}/livez" in " ".join(service["healthcheck"]["test"])
    for overlay in OVERLAYS:
        assert container(overlay, spec.name)["ports"][0]["containerPort"] == spec.health_port


@pytest.mark.parametrize("spec", SERVICES.values(), ids=IDS)
def test_the_deployment_declares_the_services_queues_and_port(spec: ServiceSpec) -> None:
    (deployed,) = [service for service in DEPLOYED if service.name == spec.name]
    assert deployed.queues == spec.queues
    assert deployed.health_port == spec.health_port
    assert (deployed.pool is not None) == bool(spec.queues)


@pytest.mark.parametrize("spec", SERVICES.values(), ids=IDS)
def test_each_worker_pool_scales_on_its_own_backlog(spec: ServiceSpec) -> None:
    scaled = objects_of("prod", "ScaledObject")
    hpas = objects_of("prod-hpa", "HorizontalPodAutoscaler")
    if not spec.queues:
        assert spec.name not in scaled and spec.name not in hpas
        return
    urls = {t["metadata"]["url"] for t in scaled[spec.name]["spec"]["triggers"] if t["type"] == "metrics-api"}
    assert {url.rsplit("/", 1)[1] for url in urls} == {spec.name}
    selectors = {m["external"]["metric"]["selector"]["matchLabels"]["pool"] for m in hpas[spec.name]["spec"]["metrics"]}
    assert selectors == {spec.name}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("spec", SERVICES.values(), ids=IDS)
def test_kubernetes_variables_are_read_and_the_required_ones_set(spec: ServiceSpec, overlay: str) -> None:
    readable = service_variables(spec)
    own = container(overlay, spec.name)
    names = {entry["name"] for entry in own.get("env", [])}
    assert names - set(readable) - LIBRARY_VARIABLES == set(), "variables nothing reads"
    configured = names | config_map_keys(overlay)
    required = {name for name, needed in readable.items() if needed}
    assert required <= configured, f"required variables missing: {required - configured}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_shared_config_map_holds_common_variables_only(overlay: str) -> None:
    assert config_map_keys(overlay) <= set(variables(CommonSettings))


@pytest.mark.parametrize("spec", SERVICES.values(), ids=IDS)
def test_compose_variables_are_read_and_the_required_ones_set(spec: ServiceSpec) -> None:
    readable = service_variables(spec)
    environment = set(compose()["services"][spec.name]["environment"])
    assert environment - set(readable) - LIBRARY_VARIABLES == set(), "variables nothing reads"
    required = {name for name, needed in readable.items() if needed}
    assert required <= environment


def test_the_common_config_file_sets_common_variables_only() -> None:
    assert set(read_env_file(CONFIG_ENV)) <= set(variables(CommonSettings))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("spec", [s for s in SERVICES.values() if s.processes > 1 or s.threads == 1], ids=str)
def test_the_cpu_bound_pool_runs_one_process_per_cpu_it_may_use(spec: ServiceSpec, overlay: str) -> None:
    """Left unset, the process count would be the node's CPU count, not the pod's."""
    own = container(overlay, spec.name)
    prefix = spec.name.upper()
    env = {entry["name"]: entry.get("value") for entry in own["env"]}
    processes = int(env[f"{prefix}_PROCESSES"])
    assert processes == math.floor(cpus(own["resources"]["limits"]["cpu"]))
    assert cpus(own["resources"]["requests"]["cpu"]) <= processes
