"""Histogram buckets and the percentiles estimated from them, against exact percentiles."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from nightshift.ops import histogram


def _exact(values: list[float], quantile: float) -> float:
    """``percentile_cont``: linear between the two neighbours of position q * (n - 1)."""
    ordered = sorted(values)
    position = quantile * (len(ordered) - 1)
    below = math.floor(position)
    if below == len(ordered) - 1:
        return ordered[below]
    return ordered[below] + (ordered[below + 1] - ordered[below]) * (position - below)


def test_each_duration_falls_inside_its_bucket() -> None:
    for duration in (0.0, 0.4, 1.0, 1.1, 9.99, 10.0, 123.4, 59_000.0, 9.9e6, 1e7, 5e8):
        lower, upper = histogram.bounds(histogram.bucket(duration))
        assert lower <= duration < upper, duration
    assert histogram.bucket(5e8) == histogram.LAST
    with pytest.raises(ValueError, match="bucket must be between 0 and 141"):
        histogram.bounds(142)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_estimated_percentiles_are_within_one_bucket_of_the_exact_ones(seed: int) -> None:
    generator = random.Random(seed)
    values = [generator.lognormvariate(4, 1.5) for _ in range(5000)]
    counts: dict[int, int] = {}
    for value in values:
        counts[histogram.bucket(value)] = counts.get(histogram.bucket(value), 0) + 1
    quantiles = (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)
    halves = histogram.merge([(list(counts), list(counts.values())), ([], [])])

    estimates = histogram.percentiles(halves, quantiles, minimum=min(values), maximum=max(values))

    for quantile, estimate in zip(quantiles, estimates, strict=True):
        exact = _exact(values, quantile)
        assert abs(estimate - exact) <= exact * histogram.RELATIVE_ERROR, (quantile, estimate, exact)
    assert estimates[0] >= min(values) and estimates[-1] <= max(values)
    assert statistics.median(values) == pytest.approx(estimates[1], rel=histogram.RELATIVE_ERROR)


def test_merging_adds_counts_and_an_empty_histogram_is_refused() -> None:
    assert histogram.merge([([3, 5], [1, 2]), ([5, 9], [4, 1])]) == {3: 1, 5: 6, 9: 1}
    assert histogram.percentiles({7: 3}, [0.5], minimum=2.0, maximum=2.0) == [2.0]
    with pytest.raises(ValueError, match="empty histogram"):
        histogram.percentiles({}, [0.5], minimum=0, maximum=0)
    with pytest.raises(ValueError, match="quantile must be between 0 and 1"):
        histogram.percentiles({7: 3}, [1.5], minimum=2.0, maximum=3.0)
