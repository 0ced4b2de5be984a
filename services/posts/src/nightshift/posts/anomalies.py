"""Robust anomaly detection: a value against the median and MAD of comparable past values.

With *m* the median of the history and *MAD* the median of ``|hᵢ - m|``::

    scale = max(1.4826 · MAD, 5 % of |m|, 1)
    z     = (value - m) / scale

and the value is anomalous when ``|z|`` exceeds the threshold (3.5, Iglewicz and
Hoaglin's recommendation). 1.4826 · MAD estimates the standard deviation of normal
data without letting one past outlier inflate it, as a mean ± 2 sigma on a handful of
points would. The floor on the scale keeps a perfectly regular history (MAD = 0)
from turning a 1 % wobble into an alarm.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: Makes the MAD of normal data an estimate of its standard deviation.
MAD_TO_SIGMA = 1.4826
#: Deviations below this share of the median are never anomalies.
RELATIVE_FLOOR = 0.05


@dataclass(frozen=True)
class Finding:
    """One metric's comparison with its history."""

    metric: str
    value: float
    median: float
    mad: float
    z: float
    anomalous: bool


def robust_z(value: float, history: Sequence[float]) -> tuple[float, float, float]:
    """``(z, median, MAD)`` of *value* against *history* (see the module's docstring).

    Raises:
      ValueError: *history* is empty.
    """
    if not history:
        raise ValueError("no history to compare with")
    median = statistics.median(history)
    mad = statistics.median(abs(h - median) for h in history)
    scale = max(MAD_TO_SIGMA * mad, RELATIVE_FLOOR * abs(median), 1.0)
    return (value - median) / scale, median, mad


def assess(metric: str, value: float, history: Sequence[float], *, threshold: float = 3.5) -> Finding:
    """Compare *value* of *metric* with its *history*."""
    z, median, mad = robust_z(value, history)
    return Finding(metric, value, median, mad, round(z, 3), abs(z) > threshold)
