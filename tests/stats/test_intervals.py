"""Student's t interval and median/IQR against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evalkit.stats.bootstrap import mean_ci
from evalkit.stats.intervals import median_iqr, t_bounds, t_interval


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_t_interval_equals_scipys_t_interval(n):
    x = np.random.default_rng(n).normal(3.0, 2.0, n)
    iv = t_interval(x, 0.9)
    low, high = stats.t.interval(0.9, n - 1, loc=x.mean(), scale=stats.sem(x))
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-12)
    assert iv.mean == pytest.approx(x.mean()) and iv.n == n


def test_t_interval_hand_value_and_small_samples():
    iv = t_interval([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.3027 (tables)
    assert (iv.mean, iv.low, iv.high, iv.n) == pytest.approx((2.0, 2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3),
                                                              3), abs=1e-4)
    one = t_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.low) and math.isnan(one.high) and one.n == 1
    none = t_interval([])
    assert none.n == 0 and math.isnan(none.mean)


def test_batched_bounds_equal_each_row_alone_bit_for_bit():
    x = np.random.default_rng(1).normal(size=(6, 5))
    low, high = t_bounds(x, 0.95)
    for row, lo, hi in zip(x, low, high, strict=True):
        iv = t_interval(row)
        assert (iv.low, iv.high) == (lo, hi)


def test_the_bootstraps_small_samples_use_this_t_interval():
    x = [1.0, 4.0, 2.5, 3.0, 7.0]  # 3 <= n < 6: Student's t
    iv = t_interval(x)
    assert mean_ci(x) == (iv.low, iv.high)


def test_median_and_iqr_hand_values():
    assert median_iqr([1, 2, 3, 4, 5]) == (3.0, 2.0)
    assert median_iqr([1.0, 3.0]) == (2.0, 1.0)  # quartiles 1.5 and 2.5 by linear interpolation
    med, iqr = median_iqr([])
    assert math.isnan(med) and math.isnan(iqr)
