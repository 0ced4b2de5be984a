"""Where a deployed worker's CPU goes: py-spy over every thread, under a drain and while idle.

The workers are started exactly as :mod:`bench.throughput` starts them
(``run_worker`` on :mod:`bench.noop_service`); `py-spy <https://github.com/benfred/py-spy>`_
samples each process (``--nonblocking``, so the profiler does not stop the
process it measures) while the backlog drains, then again while the workers
sit idle. Only samples of threads that were running (not waiting) count.

Reported per phase: the share of samples whose innermost frame is in each
function ("self"), and the share whose stack contains it ("total"), top
entries first. py-spy is a measuring tool only: install it into the
environment first (``uv pip install py-spy``).

Run it with ``python -m bench.profile_worker`` (``--help`` for the sizes;
``--code PATH`` profiles another checkout's ``nightshift.common``).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench._common import WORKDIR, header, servers
from bench.throughput import Driver, load_average

#: py-spy's samples per second.
RATE = 250

#: A frame in py-spy's raw output: ``function (file:line)``.
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def py_spy() -> str:
    """The py-spy executable next to this interpreter, or on PATH.

    Raises:
      SystemExit: When py-spy is not installed.
    """
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: uv pip install py-spy")
    return found


def record(pids: list[int], out: Path, duration_s: float | None = None, rate: int = RATE) -> Callable[[], list[Path]]:
    """Start one py-spy per pid; return a function that stops them and returns their raw files."""
    procs = []
    files = []
    for pid in pids:
        path = out.with_name(f"{out.name}-{pid}.txt")
        command = [py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--gil"]
        command += ["--format", "raw", "--output", str(path)]
        if duration_s is not None:
            command += ["--duration", str(max(1, round(duration_s)))]
        procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        files.append(path)
    time.sleep(0.3)  # py-spy attaches

    def stop() -> list[Path]:
        for proc in procs:
            if duration_s is None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(timeout=60)
        return files

    return stop


def short(function: str, file: str) -> str:
    """``module.py:function`` with the file's path cut to its package-relative tail."""
    parts = Path(file).parts
    for anchor in ("site-packages", "src", "lib"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor) :]
            break
    return f"{'/'.join(parts[-2:])}:{function}"


def summarize(files: list[Path], top: int) -> dict[str, object]:
    """Self and total shares of the samples in py-spy's raw *files*."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue  # a line py-spy cut short
            count = int(count_text)
            names = []
            for frame in stack.split(";")[1:]:  # the first entry is the thread
                match = FRAME.match(frame)
                if match:
                    names.append(short(match["function"], match["file"]))
            if not names:
                continue
            samples += count
            own[names[-1]] += count
            for name in set(names):
                total[name] += count
    return {
        "samples": samples,
        "self": [(name, count / samples) for name, count in own.most_common(top)] if samples else [],
        "total": [(name, count / samples) for name, count in total.most_common(top)] if samples else [],
    }


def print_summary(title: str, summary: dict[str, object], rate: int = RATE) -> None:
    print(f"\n{title}: {summary['samples']} samples at {rate}/s (the thread holding the GIL)")
    for kind in ("self", "total"):
        print(f"  top by {kind} time")
        for name, share in summary[kind]:  # type: ignore[attr-defined]
            print(f"    {share * 100:5.1f} %  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle profile length (0: skip)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--idle-rate", type=int, default=1000, help="py-spy samples per second while idle")
    parser.add_argument("--code", type=Path, help="profile this checkout's nightshift.common instead")
    parser.add_argument("--json", type=Path, help="also write the summaries here")
    options = parser.parse_args(argv)
    out = WORKDIR / "profile"
    out.mkdir(parents=True, exist_ok=True)
    with servers("profile") as running:
        driver = Driver(running, code=options.code)
        print(header("Profile of a deployed worker (py-spy, all threads)"))
        print(f"  load average {load_average()}; code {options.code or 'this checkout'}")
        stoppers: list[Callable[[], list[Path]]] = []

        def on_go(pids: list[int]) -> Callable[[], None]:
            stoppers.append(record(pids, out / "drain"))
            return lambda: None

        result = driver.drain("nightshift", options.messages, options.processes, options.threads, on_go=on_go)
        drain = summarize(stoppers[0](), options.top)
        print(f"  drain: {result['steady_msgs_per_s']:.0f} msgs/s steady, {result['worker_cpu_us_per_msg']:.0f} us/msg")
        print_summary("Drain", drain)
        report: dict[str, object] = {"drain": drain, "drain_result": result}
        if options.idle_s:
            answer = driver.idle(
                "nightshift",
                options.processes,
                options.threads,
                options.idle_s,
                probe=lambda pids: record(pids, out / "idle", rate=options.idle_rate),
            )
            idle = summarize(answer.pop("probe"), options.top)
            print(
                f"  idle: {answer['cpu_ms_per_s_per_process']:.1f} ms CPU/s and "
                f"{answer['redis_commands_per_s_per_process']:.1f} Redis commands/s per process "
                f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(answer['redis_commands'].items()))})"
            )
            print_summary(f"Idle ({options.idle_s:.0f} s)", idle, options.idle_rate)
            report["idle"] = idle
            report["idle_result"] = answer
        if options.json:
            options.json.parent.mkdir(parents=True, exist_ok=True)
            options.json.write_text(json.dumps(report, indent=1))
        driver.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
