"""The Kubernetes manifests: both overlays render, validate strictly, and are hardened."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy.manifests import read_env_file
from tests.deploy.conftest import OVERLAYS, ROOT, SCHEMAS, objects_of, rendered

#: The Kubernetes version the manifests are validated against (the newest kubernetes-validate knows).
KUBERNETES_VERSION = kubernetes_validate.latest_version()

#: Custom resources and the CRD file that defines each, under ../shared/schemas.
CRD_FILES = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda/keda.sh_scaledobjects.yaml",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda/keda.sh_triggerauthentications.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "prometheus-operator/monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "prometheus-operator/monitoring.coreos.com_podmonitors.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
}

#: The recommended labels every object carries.
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
)

WORKLOAD_KINDS = ("Deployment", "Job")


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of *kind*'s served version, from its CRD."""
    crd = yaml.safe_load((SCHEMAS / CRD_FILES[(api_version, kind)]).read_text())
    version = api_version.split("/")[1]
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{kind} CRD serves no {version}")


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """*schema* refusing properties it does not name (what the API server's pruning would drop silently)."""
    closable = schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema
    if closable and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema = {**schema, "additionalProperties": False}
    result = dict(schema)
    for key in ("properties",):
        if key in result:
            result[key] = {name: strict(sub) for name, sub in result[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(result.get(key), dict):
            result[key] = strict(result[key])
    return result


def pod_specs(overlay: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{item['kind']}/{item['metadata']['name']}", item["spec"]["template"]["spec"])
        for item in rendered(overlay)
        if item["kind"] in WORKLOAD_KINDS
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(overlay: str) -> None:
    problems = []
    for item in rendered(overlay):
        key = (item["apiVersion"], item["kind"])
        name = f"{item['kind']}/{item['metadata']['name']}"
        try:
            if key in CRD_FILES:
                body = {k: v for k, v in item.items() if k not in ("apiVersion", "kind", "metadata")}
                # No check_schema: the CRDs' Go patterns (``(?i)`` mid-pattern) are not Python regexes.
                jsonschema.Draft202012Validator({**strict(crd_schema(*key)), "required": ["spec"]}).validate(body)
            else:
                kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
            problems.append(f"{name}: {getattr(error, 'message', error)}")
    assert problems == []


def test_the_strict_crd_check_refuses_an_unknown_field() -> None:
    scaled = next(iter(objects_of("prod", "ScaledObject").values()))
    body = {"spec": {**scaled["spec"], "pollingIntervall": 15}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(strict(crd_schema("keda.sh/v1alpha1", "ScaledObject"))).validate(body)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_carries_the_recommended_labels(overlay: str) -> None:
    missing = [
        f"{item['kind']}/{item['metadata']['name']}: {label}"
        for item in rendered(overlay)
        for label in RECOMMENDED_LABELS
        if label not in item["metadata"].get("labels", {})
    ]
    assert missing == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_hardened_and_limited(overlay: str) -> None:
    problems = []
    for name, spec in pod_specs(overlay):
        pod = spec.get("securityContext", {})
        if not pod.get("runAsNonRoot") or pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod not non-root with seccomp RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token")
        for container in spec["containers"]:
            context = container.get("securityContext", {})
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: root filesystem writable")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: privilege escalation allowed")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: capabilities not all dropped")
            for kind in ("requests", "limits"):
                if set(container.get("resources", {}).get(kind, {})) != {"cpu", "memory"}:
                    problems.append(f"{name}: {kind} lack cpu or memory")
            env_names = [entry["name"] for entry in container.get("env", [])]
            if len(env_names) != len(set(env_names)):
                problems.append(f"{name}: a variable is set twice ({env_names})")
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            if "/tmp" not in mounts:
                problems.append(f"{name}: no writable /tmp")
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_probed_and_outlives_its_shutdown_grace(overlay: str) -> None:
    config = read_env_file(ROOT / "deploy" / "k8s" / "base" / "config.env")
    grace_ms = int(config["SHUTDOWN_GRACE_MS"])
    for name, deployment in objects_of(overlay, "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["startupProbe"]["httpGet"]["path"] == "/livez", name
        assert spec["terminationGracePeriodSeconds"] * 1000 > grace_ms, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_network_policy_selects_a_workload(overlay: str) -> None:
    pod_labels = [
        item["spec"]["template"]["metadata"]["labels"] for item in rendered(overlay) if item["kind"] in WORKLOAD_KINDS
    ]
    policies = objects_of(overlay, "NetworkPolicy")
    assert "default-deny" in policies and policies["default-deny"]["spec"]["podSelector"] == {}
    for name, policy in policies.items():
        wanted = policy["spec"]["podSelector"].get("matchLabels", {})
        assert any(wanted.items() <= labels.items() for labels in pod_labels), f"NetworkPolicy/{name} selects nothing"
    covered = {labels["app.kubernetes.io/name"] for labels in pod_labels}
    own = {
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for n, p in policies.items()
        if n != "default-deny"
    }
    assert covered <= own


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_and_a_monitor(overlay: str) -> None:
    deployments = set(objects_of(overlay, "Deployment"))
    budgets = {
        item["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for item in objects_of(overlay, "PodDisruptionBudget").values()
    }
    monitored = set(objects_of(overlay, "PodMonitor")) | set(objects_of(overlay, "ServiceMonitor"))
    assert deployments <= budgets
    assert deployments <= monitored
    assert objects_of(overlay, "PrometheusRule")


def test_the_scheduler_runs_twice_and_a_disruption_keeps_one() -> None:
    for overlay in OVERLAYS:
        assert objects_of(overlay, "Deployment")["scheduler"]["spec"]["replicas"] == 2
        assert objects_of(overlay, "PodDisruptionBudget")["scheduler"]["spec"]["minAvailable"] == 1


def test_production_reaches_redis_and_postgresql_with_the_ca_mounted() -> None:
    for overlay in ("prod", "prod-hpa"):
        for name, spec in pod_specs(overlay):
            mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
            assert mounts.get("/etc/nightshift/tls", {}).get("readOnly") is True, f"{overlay} {name}"


def test_no_secret_value_is_committed() -> None:
    for overlay in OVERLAYS:
        assert objects_of(overlay, "Secret") == {}
        for name, config in objects_of(overlay, "ConfigMap").items():
            assert not any(
                word in key
                for key in config.get("data", {})
                for word in ("URL", "PASSWORD", "KEY")
                if key not in ("STORAGE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT")
            ), name


def test_each_autoscaled_pool_has_one_scaler_per_variant() -> None:
    keda = objects_of("prod", "ScaledObject")
    hpa = objects_of("prod-hpa", "HorizontalPodAutoscaler")
    assert set(keda) == set(hpa)
    assert objects_of("prod", "HorizontalPodAutoscaler") == {}
    for name, scaled in keda.items():
        assert scaled["spec"]["scaleTargetRef"]["name"] == name
        kinds = [trigger["name"] for trigger in scaled["spec"]["triggers"] if trigger["type"] == "metrics-api"]
        assert kinds == ["backlog", "oldest-age"]
        behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_the_committed_files_are_yaml() -> None:
    for path in Path(ROOT / "deploy" / "k8s").rglob("*.yaml"):
        list(yaml.safe_load_all(path.read_text()))
