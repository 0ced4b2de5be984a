"""Duration histograms over fixed log-spaced buckets, and percentiles estimated from them.

Bucket 0 holds durations under 1 ms; bucket ``i`` (1 … 140) holds
``[10^((i-1)/20), 10^(i/20))`` ms, twenty buckets per decade; bucket 141 holds
10^7 ms (2.8 hours) and longer. Summing histograms is exact (minutes add up to
hours and days), so a window's percentiles come from the per-minute rollup
without reading a raw row.

An estimated percentile is interpolated inside the bucket the true value falls
in (and within the observed minimum and maximum), so it is off by less than one
bucket's width: at most ``RELATIVE_ERROR`` (12.2 %) of the true value, usually
much less.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

#: Buckets per decade of milliseconds.
PER_DECADE = 20

#: The last bucket: 10^7 ms and longer.
LAST = 1 + 7 * PER_DECADE

#: The widest relative error of an estimated percentile: one bucket's width over its lower bound.
RELATIVE_ERROR = 10 ** (1 / PER_DECADE) - 1

#: The bucket of ``duration_ms`` in SQL; the same rule as :func:`bucket`.
SQL_BUCKET = (
    f"(CASE WHEN duration_ms < 1 THEN 0 "
    f"ELSE LEAST(floor(log(duration_ms::float8) * {PER_DECADE})::int + 1, {LAST}) END)"
)


def bucket(duration_ms: float) -> int:
    """The bucket holding *duration_ms*."""
    if duration_ms < 1:
        return 0
    return min(math.floor(math.log10(duration_ms) * PER_DECADE) + 1, LAST)


def bounds(index: int) -> tuple[float, float]:
    """The lower (inclusive) and upper (exclusive) durations of bucket *index*, in ms.

    Raises:
      ValueError: *index* is not a bucket.
    """
    if not 0 <= index <= LAST:
        raise ValueError(f"bucket must be between 0 and {LAST}, not {index}")
    if index == 0:
        return 0.0, 1.0
    upper = math.inf if index == LAST else 10 ** (index / PER_DECADE)
    return 10 ** ((index - 1) / PER_DECADE), upper


def merge(histograms: Iterable[tuple[Sequence[int], Sequence[int]]]) -> dict[int, int]:
    """Sum sparse histograms, each given as its buckets and their counts."""
    total: dict[int, int] = {}
    for buckets, counts in histograms:
        for index, count in zip(buckets, counts, strict=True):
            total[index] = total.get(index, 0) + count
    return total


def percentiles(
    histogram: Mapping[int, int], quantiles: Sequence[float], *, minimum: float, maximum: float
) -> list[float]:
    """Estimate the *quantiles* (0 … 1) of the durations counted in *histogram*.

    The same position as PostgreSQL's ``percentile_cont`` (``q * (n - 1)``, between
    two neighbouring durations), each duration placed evenly inside its bucket
    clamped to [*minimum*, *maximum*], the observed extremes.

    Raises:
      ValueError: The histogram is empty or a quantile is outside 0 … 1.
    """
    ordered = sorted((index, count) for index, count in histogram.items() if count > 0)
    total = sum(count for _, count in ordered)
    if total == 0:
        raise ValueError("cannot estimate percentiles of an empty histogram")

    def nth(position: int) -> float:
        seen = 0
        for index, count in ordered:
            if position < seen + count:
                lower, upper = bounds(index)
                lower, upper = max(lower, minimum), min(upper, maximum)
                return lower + (upper - lower) * (position - seen + 0.5) / count
            seen += count
        return maximum

    estimates = []
    for quantile in quantiles:
        if not 0 <= quantile <= 1:
            raise ValueError(f"quantile must be between 0 and 1, not {quantile}")
        position = quantile * (total - 1)
        below = math.floor(position)
        fraction = position - below
        value = nth(below) if fraction == 0 else nth(below) * (1 - fraction) + nth(below + 1) * fraction
        estimates.append(value)
    return estimates
