"""Replay arrival traces through the autoscaling rules and compare four scaling signals.

The pools' targets are the generated manifests' own (``deploy.pools``); the rules are
the Kubernetes HPA's (``desired = ceil(current x metric / target)`` with its 10 %
tolerance, the scale-up and scale-down policies of ``deploy.manifests.behavior``, the
300 s down-stabilisation), KEDA's (metrics read every ``pollingInterval``, the cron
trigger's floor), pods that serve only after a start-up delay, and per-replica
throughput from the project's measured benchmarks (docs/benchmarks.md):

- notifications: 16 threads per pod, each email an assumed 150 ms provider call (not
  measured here) plus the deployed worker's measured 336 us of CPU per message;
- media: 2 single-threaded processes per pod at the measured 157 ms per 12 MP photo.

Signals: ``llen`` (the ready list only: messages prefetched by workers and retries
waiting in the delay queue are invisible), ``backlog`` (ready + in flight + due
delayed, what the ops service answers), ``backlog+age`` (with the oldest-message age
as the second trigger), ``prescaled`` (the last plus the cron floor generated from the
schedules). Writes ``docs/img/scaling-<trace>.png`` and prints the table of
``docs/scaling.md``::

    python -m bench.autoscale_sim            # about 10 s
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy.pools import PRESCALE_HOLD_MINUTES, PRESCALE_LEAD_MINUTES, Pool, deployed

#: Where the plots go.
IMG_DIR = Path(__file__).resolve().parent.parent / "docs" / "img"

SIGNALS = ("llen", "backlog", "backlog+age", "prescaled")
#: HPA rules, as in deploy/manifests.py's behavior() and the controller's defaults.
SYNC_S = 15
TOLERANCE = 0.1
DOWN_STABILISATION_S = 300
#: Seconds from a scale-up decision until the new pod serves (scheduling, image, start, readiness).
POD_START_S = 25
#: Dramatiq's default prefetch: twice the threads of each process.
PREFETCH_PER_THREAD = 2

#: Measured: the deployed worker's CPU per message (docs/benchmarks.md, throughput).
WORKER_CPU_PER_MESSAGE_S = 336e-6
#: Assumed: one transactional email through the provider's API.
PROVIDER_CALL_S = 0.150
#: Measured: the media service's pipeline per 12 MP photo (docs/benchmarks.md, media variants).
MEDIA_PHOTO_S = 0.157


@dataclass(frozen=True)
class Workload:
    """A pool and what one of its pods does per second.

    Parameters:
      name: The service.
      pool: Its autoscaling targets (from deploy.pools).
      per_replica: Messages one ready pod finishes per second.
      prefetch: Messages one pod holds fetched but unfinished at most.
      retry_fraction: Share of attempts that fail transiently and wait in the delay queue.
      retry_delay_s: How long they wait (the first retry delay of a throttled provider call).
    """

    name: str
    pool: Pool
    per_replica: float
    prefetch: int
    retry_fraction: float = 0.0
    retry_delay_s: int = 5


@dataclass(frozen=True)
class Trace:
    """Arrivals per second over a period, and when its burst-producing schedule fires."""

    name: str
    title: str
    workload: Workload
    seconds: int
    arrivals: Callable[[int], float]
    burst_at: int | None = None


@dataclass
class Run:
    """One signal's replay of one trace, second by second."""

    signal: str
    backlog: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    oldest_age: list[float] = field(default_factory=list)


def notifications_workload() -> Workload:
    service = deployed("notifications")
    assert service.pool is not None
    threads = 16
    per_replica = threads / (PROVIDER_CALL_S + WORKER_CPU_PER_MESSAGE_S)
    return Workload("notifications", service.pool, per_replica, threads * PREFETCH_PER_THREAD, 0.03, 5)


def media_workload() -> Workload:
    service = deployed("media")
    assert service.pool is not None
    processes = int(service.env["MEDIA_PROCESSES"])
    return Workload("media", service.pool, processes / MEDIA_PHOTO_S, processes)


def traces(seed: int) -> list[Trace]:
    """The three traces: the Monday digest, a media upload peak, a steady day with noise."""
    rng = random.Random(seed)
    steady_noise = [rng.gauss(1.0, 0.25) for _ in range(86_400)]

    def digest(t: int) -> float:
        # 100,000 emails handed over by the digest's composer in batches over 50 s from 09:00.
        base = 5.0
        return base + (2000.0 if 1800 <= t < 1850 else 0.0)

    def uploads(t: int) -> float:
        # 2/s, ramping to 40/s over 5 minutes from minute 10, held 20 minutes, decaying.
        minute = t / 60
        if minute < 10:
            return 2.0
        if minute < 15:
            return 2.0 + 38.0 * (minute - 10) / 5
        if minute < 35:
            return 40.0
        return 2.0 + 38.0 * math.exp(-(minute - 35) / 5)

    def steady(t: int) -> float:
        # A day of transactional email: 20/s at night, 400/s in the evening, noisy.
        hour = t / 3600
        shape = 210.0 - 190.0 * math.cos(2 * math.pi * (hour - 8) / 24)
        return max(0.0, shape * steady_noise[t])

    return [
        Trace(
            "digest",
            "Monday 09:00 digest: 100,000 emails (notifications)",
            notifications_workload(),
            2 * 3600,
            digest,
            1800,
        ),
        Trace("media-peak", "Media upload peak: 2/s to 40/s for 20 min (media)", media_workload(), 5400, uploads),
        Trace(
            "steady-day",
            "A steady day with noise: 20-400 emails/s (notifications)",
            notifications_workload(),
            86_400,
            steady,
        ),
    ]


def hpa_desired(current: int, metrics: Sequence[tuple[float, float, str]]) -> int:
    """The HPA's recommendation: the largest over the metrics, each within tolerance of current.

    Parameters:
      current: Replicas now.
      metrics: ``(value, target, kind)``; kind ``average`` (AverageValue: value is the total)
        or ``value`` (Value: scaled by current replicas).
    """
    best = 0
    for value, target, kind in metrics:
        ratio = value / (target * max(current, 1)) if kind == "average" else value / target
        within = abs(ratio - 1.0) <= TOLERANCE
        best = max(best, current if within else math.ceil(ratio * max(current, 1)))
    return best


def replay(trace: Trace, signal: str) -> Run:
    """Replay *trace* with *signal* driving the pool."""
    work, pool = trace.workload, trace.workload.pool
    queue: deque[list[float]] = deque()  # [arrival second, messages], oldest first
    delayed: deque[tuple[int, float]] = deque()  # (due second, messages)
    starting: deque[tuple[int, int]] = deque()  # (ready second, pods)
    ready_pods = pool.min_replicas
    spec_replicas = pool.min_replicas
    recommendations: deque[tuple[int, int]] = deque()
    history: deque[tuple[int, int]] = deque()  # (second, spec replicas) for the policies' periods
    run = Run(signal)
    prescale = set()
    if signal == "prescaled" and trace.burst_at is not None:
        prescale = set(range(trace.burst_at - PRESCALE_LEAD_MINUTES * 60, trace.burst_at + PRESCALE_HOLD_MINUTES * 60))
    sampled = (0.0, 0.0, 0.0)  # llen, backlog, oldest age at KEDA's last poll

    for t in range(trace.seconds):
        arriving = trace.arrivals(t)
        if arriving:
            queue.append([float(t), arriving])
        while delayed and delayed[0][0] <= t:
            _, count = delayed.popleft()
            queue.append([float(t), count])
        while starting and starting[0][0] <= t:
            ready_pods += starting.popleft()[1]

        # Work: each ready pod finishes per_replica messages a second, oldest first; idle capacity is lost.
        budget = capacity = ready_pods * work.per_replica
        while queue and budget > 0:
            take = min(queue[0][1], budget)
            queue[0][1] -= take
            budget -= take
            if queue[0][1] <= 1e-9:
                queue.popleft()
        done = capacity - budget
        if work.retry_fraction and done:
            delayed.append((t + work.retry_delay_s, done * work.retry_fraction))

        queued = sum(count for _, count in queue)
        held = min(queued, ready_pods * work.prefetch)
        waiting_delayed = sum(count for _, count in delayed)
        oldest = t - queue[0][0] if queue else 0.0
        run.backlog.append(queued + waiting_delayed)
        run.oldest_age.append(oldest)

        if t % SYNC_S == 0:
            # KEDA polls (pollingInterval 15 s); the HPA acts on what it read.
            sampled = (queued - held, queued, oldest)
            llen, backlog, age = sampled
            if signal == "llen":
                metrics = [(llen, pool.backlog_per_replica, "average")]
            else:
                metrics = [(backlog, pool.backlog_per_replica, "average")]
            if signal in ("backlog+age", "prescaled"):
                metrics.append((age, pool.oldest_age_s, "value"))
            if t in prescale:
                metrics.append((pool.prescale_replicas, 1, "average"))
            desired = min(max(hpa_desired(spec_replicas, metrics), pool.min_replicas), pool.max_replicas)

            # Scale-down stabilisation: the highest recommendation of the last 300 s.
            recommendations.append((t, desired))
            while recommendations[0][0] < t - DOWN_STABILISATION_S:
                recommendations.popleft()
            if desired < spec_replicas:
                desired = min(spec_replicas, max(r for _, r in recommendations))
            # Policies: up by max(100 %, 4 pods) per 15 s; down by at most 50 % per 60 s.
            history.append((t, spec_replicas))
            while history[0][0] < t - 60:
                history.popleft()
            up_base = min(r for s, r in history if s >= t - SYNC_S)
            down_base = max(r for _, r in history)
            desired = min(desired, max(up_base * 2, up_base + 4))
            desired = max(desired, math.floor(down_base * 0.5))
            if desired > spec_replicas:
                starting.append((t + POD_START_S, desired - spec_replicas))
            elif desired < spec_replicas:
                removed = spec_replicas - desired
                # Pods still starting are cancelled first, then ready ones stop (gracefully).
                while removed and starting:
                    second, pods = starting.pop()
                    cancel = min(pods, removed)
                    removed -= cancel
                    if pods > cancel:
                        starting.append((second, pods - cancel))
                ready_pods -= removed
            spec_replicas = desired
        run.replicas.append(spec_replicas)
    return run


@dataclass(frozen=True)
class Summary:
    signal: str
    drain_s: float | None
    peak_age_s: float
    replica_minutes: float


def summarise(trace: Trace, run: Run) -> Summary:
    """Drain time (burst start until the backlog is under 1 % of its peak), peak age, replica-minutes."""
    drain = None
    if trace.burst_at is not None:
        peak_at = max(range(len(run.backlog)), key=run.backlog.__getitem__)
        limit = max(run.backlog[peak_at] * 0.01, 1.0)
        after = next((t for t in range(peak_at, len(run.backlog)) if run.backlog[t] <= limit), len(run.backlog))
        drain = float(after - trace.burst_at)
    return Summary(run.signal, drain, max(run.oldest_age), sum(run.replicas) / 60)


def plot(trace: Trace, runs: Sequence[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [t / 60 for t in range(trace.seconds)]
    figure, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    styles = {"llen": "-", "backlog": "--", "backlog+age": "-.", "prescaled": ":"}
    for run in runs:
        axes[0].plot(minutes, run.backlog, styles[run.signal], label=run.signal, linewidth=1.2)
        axes[1].plot(minutes, run.replicas, styles[run.signal], label=run.signal, linewidth=1.2)
        axes[2].plot(minutes, run.oldest_age, styles[run.signal], label=run.signal, linewidth=1.2)
    axes[0].set_ylabel("backlog (messages)")
    axes[1].set_ylabel("replicas")
    axes[2].set_ylabel("oldest message age (s)")
    axes[2].set_xlabel("minutes")
    axes[0].set_title(trace.title)
    axes[0].legend(loc="upper right")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=14, help="seed of the steady day's noise")
    parser.add_argument("--no-plots", action="store_true", help="print the table only")
    options = parser.parse_args(argv)
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    print("| trace | signal | drain time | peak oldest age | replica-minutes |")
    print("|---|---|---|---|---|")
    for trace in traces(options.seed):
        runs = [replay(trace, signal) for signal in SIGNALS]
        for run in runs:
            summary = summarise(trace, run)
            drain = f"{summary.drain_s / 60:.1f} min" if summary.drain_s is not None else "n/a"
            cells = (
                trace.name,
                summary.signal,
                drain,
                f"{summary.peak_age_s:.0f} s",
                f"{summary.replica_minutes:,.0f}",
            )
            print("| " + " | ".join(cells) + " |")
        if not options.no_plots:
            plot(trace, runs, IMG_DIR / f"scaling-{trace.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
