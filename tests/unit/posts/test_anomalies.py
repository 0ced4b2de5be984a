"""Median and MAD: one past outlier does not hide an anomaly, a regular history does not cry wolf."""

from __future__ import annotations

import pytest

from nightshift.posts.anomalies import assess, robust_z


def test_a_spike_is_anomalous_against_a_history_with_an_outlier() -> None:
    history = [100, 104, 98, 101, 400, 99]  # one past spike
    assert assess("posts", 300, history).anomalous
    assert not assess("posts", 108, history).anomalous
    # mean ± 2 sigma on the same points would call 300 normal: the outlier inflates sigma.
    mean = sum(history) / len(history)
    sigma = (sum((h - mean) ** 2 for h in history) / (len(history) - 1)) ** 0.5
    assert abs(300 - mean) < 2 * sigma


def test_a_perfectly_regular_history_tolerates_small_wobbles() -> None:
    assert not assess("likes", 1020, [1000] * 6).anomalous  # MAD = 0: the 5 % floor applies
    assert assess("likes", 1200, [1000] * 6).anomalous  # z = 200 / 50 = 4
    assert not assess("shares", 1, [0, 0, 0, 0]).anomalous  # the floor of 1
    assert assess("shares", 5, [0, 0, 0, 0]).anomalous


def test_z_median_and_mad() -> None:
    z, median, mad = robust_z(130, [100, 110, 90, 100, 120])
    assert (median, mad) == (100, 10)
    assert z == pytest.approx(30 / (1.4826 * 10))
    with pytest.raises(ValueError, match="no history"):
        robust_z(1, [])
