"""What the benchmark scripts share: servers, environment and statistics.

Benchmarks run on real servers: the embedded Redis and PostgreSQL (data under
``var/bench/``) unless ``BENCH_REDIS_URL`` / ``BENCH_DATABASE_URL`` point at
existing ones. A benchmark is a script, never a test: it measures and prints,
it asserts nothing about time.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import statistics
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from nightshift.common.db import migrate
from nightshift.common.local.embedded import EmbeddedPostgres, EmbeddedRedis, runtime_dir_default

#: The repository's root.
ROOT = Path(__file__).resolve().parent.parent

#: Where embedded servers keep their data during a benchmark (outside the
#: repository's ``var/``, which ``make clean`` and local runs may wipe).
WORKDIR = Path(os.environ.get("BENCH_WORKDIR") or Path(tempfile.gettempdir()) / f"nightshift-bench-{os.getuid()}")


@dataclass(frozen=True)
class Servers:
    redis_url: str
    database_url: str

    def env(self) -> dict[str, str]:
        """The environment a Nightshift process needs to use these servers."""
        env = dict(os.environ)
        env.update(
            REDIS_URL=self.redis_url,
            DATABASE_URL=self.database_url,
            ENVIRONMENT="test",
            LOG_LEVEL="WARNING",
        )
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        return env


@contextmanager
def servers(name: str, *, redis: bool = True) -> Iterator[Servers]:
    """Yield the servers a benchmark runs on, migrated; embedded ones are stopped afterwards.

    Parameters:
      name: The benchmark's name (its embedded servers' folder and database name).
      redis: Whether Redis is needed at all.
    """
    with ExitStack() as stack:
        redis_url = os.environ.get("BENCH_REDIS_URL", "")
        if redis and not redis_url:
            server = EmbeddedRedis(WORKDIR / name / "redis").start()
            stack.callback(server.stop)
            redis_url = server.url
        database_url = os.environ.get("BENCH_DATABASE_URL", "")
        if not database_url:
            runtime_dir_default()
            postgres = EmbeddedPostgres(WORKDIR / name / "pg", keep=False).start()
            stack.callback(postgres.stop)
            database_url = postgres.create_database(f"bench_{name}")
        migrate.upgrade(database_url)
        yield Servers(redis_url=redis_url or "redis://unused:6379/0", database_url=database_url)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of *values* (``fraction`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def describe_machine() -> str:
    """CPU count, model and Python version, for the record."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def describe_revision() -> str:
    """The commit measured, marked when the working tree had changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"{commit}{' + uncommitted changes' if dirty else ''}"


def header(title: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{title}\n  {now}; {describe_machine()}; revision {describe_revision()}"
