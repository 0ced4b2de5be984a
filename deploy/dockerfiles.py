"""Generate the images' Dockerfiles: ``services/<name>/Dockerfile`` and ``deploy/migrations/Dockerfile``.

``python -m deploy.dockerfiles`` writes them; ``--check`` exits 1 naming the files
that differ from what would be written (``tests/deploy`` does the same). Every image
is built one way (multi-stage with uv, the locked requirements hash-checked, user
10001, ``/tmp`` the only writable path); what differs from one image to the next is
an :class:`Image` below. A service's health port comes from ``deploy.pools``, so the
image probes the port its Deployment does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.generated import write_or_check
from deploy.manifests import RUN_AS
from deploy.pools import SERVICES, Deployed

#: The repository root (paths of :class:`Image` are relative to it).
ROOT = Path(__file__).resolve().parent.parent

#: The uv image the build stage copies uv from (the Makefile's ``UV_VERSION``).
UV_IMAGE = "ghcr.io/astral-sh/uv:0.13.9"
#: The base of both stages.
PYTHON_IMAGE = "python:3.11-slim-bookworm"
COMMAND = "python -m deploy.dockerfiles"


@dataclass(frozen=True)
class Image:
    """What one image's Dockerfile says that another's does not.

    Parameters:
      name: The image is ``nightshift-<name>``.
      dockerfile: Its Dockerfile, relative to the repository root (the build context).
      about: What the image is, for the header comment (lines without ``#``).
      export: ``uv export``'s selection: ``--package nightshift-<name>`` or ``--all-packages``.
      sources: Folders copied beside ``libs/common`` (the service packages it installs).
      installs: The workspace packages installed, as ``uv pip install`` arguments.
      entrypoint: The command the container runs.
      health_port: Where ``/livez`` answers; ``None`` for a job that runs once (no probe).
    """

    name: str
    dockerfile: str
    about: tuple[str, ...]
    export: str
    sources: tuple[str, ...]
    installs: tuple[str, ...]
    entrypoint: tuple[str, ...]
    health_port: int | None


#: What each service's process is, for its image's header.
SUMMARIES = {
    "users": "worker of 8 threads (high, normal, low lanes).",
    "posts": "worker of 8 threads (high, normal, low lanes).",
    "media": "CPU-bound pool: MEDIA_PROCESSES single-threaded processes.",
    "notifications": "I/O-bound worker of 16 threads (critical, high, normal, low lanes).",
    "scheduler": "the scheduler: active on the Redis lease, or standing by.",
    "ops": "the web process: dashboard, JSON API, /metrics and the autoscaling backlog.",
}


def service_image(service: Deployed) -> Image:
    """The image of one service: its own package and the library, ``nightshift run <name>``.

    Raises:
      KeyError: The service has no entry in :data:`SUMMARIES`.
    """
    if service.name not in SUMMARIES:
        raise KeyError(f"no summary for service {service.name!r}: add it to deploy.dockerfiles.SUMMARIES")
    package = f"nightshift-{service.name}"
    return Image(
        name=service.name,
        dockerfile=f"services/{service.name}/Dockerfile",
        about=(
            f"The {service.name} service's image: {SUMMARIES[service.name]}",
            f"Only {package} and its locked dependencies are installed: no development tools, no",
            "embedded servers (the `local` extra). Build from the repository root:",
        ),
        export=f"--package {package}",
        sources=(f"services/{service.name}",),
        installs=(f"./services/{service.name}",),
        entrypoint=("nightshift", "run", service.name),
        health_port=service.health_port,
    )


#: The one-shot migration job: ``nightshift migrate`` applies every service's Alembic branch.
MIGRATIONS = Image(
    name="migrations",
    dockerfile="deploy/migrations/Dockerfile",
    about=(
        "The one-shot migration job's image: `nightshift migrate` applies the common schema's",
        "migrations and every service's Alembic branch, so it installs every service package (and",
        "nothing of the development group, nor the embedded servers). Build from the repository root:",
    ),
    export="--all-packages",
    sources=("services",),
    installs=("./services/*/",),
    entrypoint=("nightshift", "migrate"),
    health_port=None,
)


def images() -> list[Image]:
    """Every image: one per deployed service, then the migration job's."""
    return [*(service_image(service) for service in SERVICES), MIGRATIONS]


def _probe(image: Image) -> str:
    if image.health_port is None:
        return "# A job that runs once and exits: nothing to probe.\nHEALTHCHECK NONE\n"
    livez = f"http://127.0.0.1:{image.health_port}/livez"
    probe = ["python", "-c", f"import urllib.request; urllib.request.urlopen('{livez}', timeout=2)"]
    return (
        f"EXPOSE {image.health_port}\n"
        "HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \\\n"
        f"    CMD {json.dumps(probe)}\n"
    )


def dockerfile(image: Image) -> str:
    """The Dockerfile of *image*."""
    about = "".join(f"# {line}\n" for line in image.about)
    copies = "".join(f"COPY {source} {source}\n" for source in image.sources)
    installs = " ".join(("./libs/common", *image.installs))
    return f"""# syntax=docker/dockerfile:1
# Generated by `{COMMAND}` from deploy/dockerfiles.py; do not edit.
{about}#   docker build -f {image.dockerfile} -t nightshift-{image.name} .

FROM {UV_IMAGE} AS uv

FROM {PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never \\
    UV_LINK_MODE=copy \\
    UV_COMPILE_BYTECODE=1
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/common libs/common
{copies}# The locked requirements, hash-checked; then the workspace packages themselves, without resolving.
RUN uv export --frozen --no-dev {image.export} --no-emit-workspace --no-header --quiet -o requirements.txt \\
    && uv venv /opt/venv --python /usr/local/bin/python3 \\
    && uv pip install --python /opt/venv/bin/python --no-cache --no-deps --require-hashes -r requirements.txt \\
    && uv pip install --python /opt/venv/bin/python --no-cache --no-deps {installs}

FROM {PYTHON_IMAGE}
LABEL org.opencontainers.image.title="nightshift-{image.name}"
RUN groupadd --system --gid {RUN_AS} nightshift \\
    && useradd --system --uid {RUN_AS} --gid nightshift --no-create-home --home-dir /nonexistent \\
       --shell /usr/sbin/nologin nightshift
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    LOG_FORMAT=json
# The root filesystem may be read-only: /tmp is the only path written (an emptyDir or a tmpfs).
VOLUME ["/tmp"]
WORKDIR /app
USER {RUN_AS}:{RUN_AS}
{_probe(image)}ENTRYPOINT {json.dumps(list(image.entrypoint))}
"""


def render() -> dict[Path, str]:
    """Every generated Dockerfile's text, by path."""
    return {ROOT / image.dockerfile: dockerfile(image) for image in images()}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated Dockerfiles, or with ``--check`` report the stale ones (exit 1)."""
    return write_or_check(render(), command=COMMAND, description="Generate the images' Dockerfiles.", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
