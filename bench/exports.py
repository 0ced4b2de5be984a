"""Exports at scale: CSV.gz and XLSX through a real posts worker, against PostgreSQL's own COPY.

Generates ``--rows`` posts (5,000,000 by default) spread evenly over 50 days, with
bodies of 60-200 characters of text, then measures, median of ``--runs``:

* **raw COPY** — ``COPY (the export's SELECT) TO STDOUT`` read by psycopg into
  ``/dev/null`` in a process of its own: the ceiling;
* **CSV.gz → local** and **CSV.gz → S3** (a moto server in its own process) of all
  rows, and **CSV.gz → local** of the first ``--small-rows`` (1,000,000), to compare
  peak memory at two sizes;
* **XLSX → local** of the first ``--xlsx-rows`` (1,000,000).

Each export is a real ``export.requested`` handled by a fresh ``nightshift worker
posts`` process; its speed is rows over the job record's ``finished_at -
started_at``, its memory the worker's peak RSS (``VmHWM``) read before it stops.

Run it with ``python -m bench.exports`` (``--rows 500000 --runs 1`` for a quick run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg
from sqlalchemy import text

from bench._common import WORKDIR, Servers, header, median, servers
from nightshift.common.broker import build_broker
from nightshift.common.contracts.posts import ExportRequest
from nightshift.common.db.engine import make_engine
from nightshift.common.events import publish
from nightshift.common.processes import free_port, stop_processes, wait_for
from nightshift.common.settings import CommonSettings
from nightshift.common.workers import live_workers
from nightshift.posts.exports.csv_gzip import copy_statement
from nightshift.posts.exports.queries import export_query

#: The day the generated posts start; they cover :data:`DAYS` days.
START = dt.date(2026, 1, 1)
DAYS = 50
#: Text the bodies are cut from (compresses like real posts, unlike random bytes).
LOREM = (
    "Nightshift runs the slow parts of the app at night and by day: exports, digests, thumbnails. "
    "Les exports arrivent par courriel avec un lien qui expire. #export #nightshift #données "
    "Ce soir on publie les photos du concert, tonight we post the concert photos. "
) * 4


@dataclass(frozen=True)
class Measure:
    rows: int
    seconds: float
    peak_rss_mb: float
    #: The worker's resident memory when it was up and idle, before the export.
    idle_rss_mb: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def generate(database_url: str, rows: int) -> int:
    """*rows* posts by one author, evenly over :data:`DAYS` days; return the author's id."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        author = connection.execute(
            text("INSERT INTO users (email, display_name) VALUES ('bench@example.test', 'Bench') RETURNING id")
        ).scalar_one()
        step = DAYS * 86400 / rows
        for start in range(0, rows, 1_000_000):
            connection.execute(
                text(
                    "INSERT INTO posts (author_id, body, language, created_at) "
                    "SELECT :a, 'post ' || i || ': ' || substr(:lorem, 1 + i % 300, 60 + i % 140), "
                    "CASE i % 3 WHEN 0 THEN 'en' WHEN 1 THEN 'fr' END, "
                    "CAST(:start AS timestamptz) + make_interval(secs => i * :step) "
                    "FROM generate_series(:first, :last) i"
                ),
                {
                    "a": author,
                    "lorem": LOREM,
                    "start": dt.datetime.combine(START, dt.time(), dt.UTC),
                    "step": step,
                    "first": start,
                    "last": min(rows, start + 1_000_000) - 1,
                },
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE posts"))
    engine.dispose()
    return int(author)


def days_for(rows: int, total: int) -> int:
    """How many days from :data:`START` hold about *rows* of *total* posts."""
    return max(1, round(DAYS * rows / total))


def raw_copy(database_url: str, author: int, days: int) -> Measure:
    """Run :func:`_raw_copy_child` in a process of its own and read what it measured."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.exports", "--raw-copy-child", database_url, str(author), str(days)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Measure(data["rows"], data["seconds"], data["peak_rss_mb"])


def _raw_copy_child(database_url: str, author: int, days: int) -> None:
    request = _request(author, "csv", days)
    query = export_query(request, timezone="UTC")
    rows = 0
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        bounds = connection.execute(query.bounds(), query.params).fetchone()  # untimed, as the export's claim
        assert bounds is not None
        params = {**query.params, "after": bounds[1] - 1, "upto": bounds[2]}
        began = time.perf_counter()
        with (
            open(os.devnull, "wb") as sink,
            connection.cursor() as cursor,
            cursor.copy(copy_statement(query, header=True), params) as copy,
        ):
            for row in copy:
                sink.write(row)
                rows += 1
        seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows - 1, "seconds": seconds, "peak_rss_mb": peak}))


def _request(author: int, fmt: str, days: int) -> ExportRequest:
    return ExportRequest(
        requester_id=author,
        what="content",
        format=fmt,
        since=START,
        until=START + dt.timedelta(days=days - 1),
    )


def export_once(
    servers_: Servers, storage_url: str, author: int, fmt: str, days: int, extra: dict[str, str]
) -> Measure:
    """One export by a fresh posts worker: rows/s from its job record, its peak RSS."""
    env = {
        **servers_.env(),
        "STORAGE_URL": storage_url,
        "POSTS_EXPORT_MAX_RANGE_DAYS": "3660",
        "TIMEZONE": "UTC",
        "TASK_TIME_LIMIT_MS": str(4 * 3600 * 1000),
        **extra,
    }
    settings = CommonSettings(redis_url=servers_.redis_url, database_url=servers_.database_url, environment="test")
    broker = build_broker(settings)
    worker = subprocess.Popen(
        [sys.executable, "-m", "nightshift.common.cli", "worker", "posts", "--health-port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = make_engine(servers_.database_url)
    try:
        wait_for(
            lambda: any(w.pid == worker.pid for w in live_workers(broker)), timeout=120, what="the worker to be up"
        )
        idle_kb = _status_kb(worker.pid, "VmRSS")
        [message] = publish("export.requested", _request(author, fmt, days).model_dump(mode="json"), broker=broker)

        def finished() -> tuple[str, dt.datetime, dt.datetime] | None:
            with engine.connect() as connection:
                row = connection.execute(
                    text(
                        "SELECT status, started_at, finished_at FROM job_records "
                        "WHERE message_id = CAST(:id AS uuid) AND status IN ('done', 'dead')"
                    ),
                    {"id": message.message_id},
                ).first()
            return (row.status, row.started_at, row.finished_at) if row else None

        status, started, ended = wait_for(finished, timeout=4 * 3600, interval=0.5, what="the export")
        if status != "done":
            raise RuntimeError(f"export {message.message_id} ended {status}; see its job record")
        peak_kb = _status_kb(worker.pid, "VmHWM")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT rows FROM exports WHERE job_id = CAST(:id AS uuid)"), {"id": message.message_id}
            ).scalar_one()
    finally:
        stop_processes([worker], grace_s=20)
        broker.close()
        engine.dispose()
    return Measure(int(rows), (ended - started).total_seconds(), peak_kb / 1024, idle_kb / 1024)


def _status_kb(pid: int, field: str) -> int:
    """A memory figure of process *pid* from ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``: the peak), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


#: Dummy credentials: moto accepts any, boto3 insists on having some.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def moto_process(port: int) -> subprocess.Popen[bytes]:
    """A moto S3 server in a process of its own (so its memory is not the worker's), with the bench bucket."""
    for name, value in S3_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
    try:
        wait_for(lambda: _try(lambda: client.create_bucket(Bucket="bench-exports")), timeout=30, what="moto to answer")
    except BaseException:
        stop_processes([process], grace_s=5)
        raise
    return process


def _try(call: Callable[[], object]) -> bool:
    try:
        call()
    except Exception:
        return False
    return True


def report(name: str, runs: list[Measure], ceiling: float | None) -> str:
    rate = median([m.rows_per_s for m in runs])
    rss = median([m.peak_rss_mb for m in runs])
    growth = median([m.peak_rss_mb - m.idle_rss_mb for m in runs]) if runs[0].idle_rss_mb else 0.0
    share = f"{rate / ceiling:6.1%} of raw COPY" if ceiling else ""
    return (
        f"  {name:<24} {runs[0].rows:>10,} rows  {rate:>10,.0f} rows/s  peak RSS {rss:6.1f} MB "
        f"(+{growth:5.1f} over idle)  {share}"
        f"   (runs: {', '.join(f'{m.rows_per_s:,.0f}' for m in runs)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--raw-copy-child", nargs=3, metavar=("DATABASE_URL", "AUTHOR", "DAYS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_copy_child:
        url, author, days = args.raw_copy_child
        _raw_copy_child(url, int(author), int(days))
        return 0

    print(header(f"Exports: {args.rows:,} posts, median of {args.runs}"), flush=True)
    load = os.getloadavg()
    with servers("exports") as servers_:
        began = time.perf_counter()
        author = generate(servers_.database_url, args.rows)
        print(f"  generated {args.rows:,} posts in {time.perf_counter() - began:.0f} s", flush=True)
        all_days = DAYS
        small_days = days_for(args.small_rows, args.rows)
        xlsx_days = days_for(args.xlsx_rows, args.rows)
        storage = WORKDIR / "exports" / "storage"
        local = f"file://{storage}"
        port = free_port()
        moto = moto_process(port)
        s3_env = dict(S3_CREDENTIALS)
        s3 = f"s3://bench-exports/exports?endpoint_url=http://127.0.0.1:{port}&region_name=us-east-1"
        try:
            results: dict[str, list[Measure]] = {}
            plan: list[tuple[str, Callable[[], Measure]]] = [
                ("raw COPY (ceiling)", lambda: raw_copy(servers_.database_url, author, all_days)),
                ("CSV.gz -> local", lambda: export_once(servers_, local, author, "csv", all_days, {})),
                ("CSV.gz -> S3 (moto)", lambda: export_once(servers_, s3, author, "csv", all_days, s3_env)),
                ("CSV.gz -> local, small", lambda: export_once(servers_, local, author, "csv", small_days, {})),
                ("XLSX -> local", lambda: export_once(servers_, local, author, "xlsx", xlsx_days, {})),
            ]
            for name, run in plan:
                results[name] = []
                for attempt in range(args.runs):
                    measure = run()
                    results[name].append(measure)
                    print(
                        f"    {name} run {attempt + 1}: {measure.rows:,} rows in {measure.seconds:.1f} s, "
                        f"peak RSS {measure.peak_rss_mb:.1f} MB (idle {measure.idle_rss_mb:.1f} MB)",
                        flush=True,
                    )
        finally:
            stop_processes([moto], grace_s=5)
            shutil.rmtree(storage, ignore_errors=True)  # the exports written: over a gigabyte
    ceiling = median([m.rows_per_s for m in results["raw COPY (ceiling)"]])
    print(
        f"\nLoad average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; at the end: "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    for name, runs in results.items():
        print(report(name, runs, None if name.startswith("raw") else ceiling))
    return 0


if __name__ == "__main__":
    sys.exit(main())
