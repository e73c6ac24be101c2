"""The one CI of a mean over items (exports and paired comparisons): coverage by simulation at n = 12, scipy's
BCa and t intervals as references, the degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evalkit.stats.bootstrap import mean_ci, widened_level

SAMPLES, N = 2000, 12


def _coverage(samples: np.ndarray, true_mean: float) -> float:
    low, high = mean_ci(samples, seed=0)  # the production function, every sample at once
    return float(np.mean((low <= true_mean) & (true_mean <= high)))


def test_covers_the_mean_of_normal_data_at_n12():
    samples = np.random.default_rng(12).normal(0.0, 1.0, (SAMPLES, N))
    assert _coverage(samples, 0.0) >= 0.93  # the percentile bootstrap: 0.903 on these samples


def test_covers_the_mean_of_skewed_data_at_n12():
    samples = np.random.default_rng(12).exponential(1.0, (SAMPLES, N))  # skewness 2
    assert _coverage(samples, 1.0) >= 0.90  # the percentile bootstrap: 0.867 on these samples


def test_exports_and_paired_comparisons_use_this_one_interval():
    from evalkit.runner.exports import bootstrap_ci
    from evalkit.runner.paired import compare_pair, paired_bootstrap_ci

    assert bootstrap_ci is mean_ci and paired_bootstrap_ci is mean_ci
    rng = np.random.default_rng(3)
    a, b = rng.normal(3, 1, 10), rng.normal(2.5, 1, 10)
    d = compare_pair(a, b, seed=5)
    assert (d.ci_low, d.ci_high) == mean_ci(a - b, seed=5)


def test_equals_scipy_bca_at_the_widened_level():
    x = np.random.default_rng(4).gamma(2.0, 1.5, 9)
    ref = stats.bootstrap((x,), np.mean, method="BCa", n_resamples=2000, confidence_level=widened_level(9),
                          rng=np.random.default_rng(11)).confidence_interval
    assert mean_ci(x, seed=11) == pytest.approx((ref.low, ref.high), rel=1e-12)


@pytest.mark.parametrize(("m", "n"), [(3, 40), (1, 2500), (4, 1200)])  # the last two: draws in several batches
def test_batches_and_large_samples_equal_scipy_bca(m, n):
    from evalkit.stats.bootstrap import _BATCH_FLOATS

    x = np.random.default_rng(n).lognormal(0, 0.8, (m, n))
    level = widened_level(n)
    low, high = mean_ci(x, seed=7)
    ref = stats.bootstrap((x,), np.mean, method="BCa", n_resamples=2000, confidence_level=level, vectorized=True,
                          axis=-1, batch=max(1, min(2000, _BATCH_FLOATS // x.size)),
                          rng=np.random.default_rng(7)).confidence_interval
    np.testing.assert_allclose(np.atleast_1d(low), ref.low, rtol=1e-12)
    np.testing.assert_allclose(np.atleast_1d(high), ref.high, rtol=1e-12)


def test_widened_level_makes_the_normal_interval_as_wide_as_students_t():
    n = 12
    z = stats.norm.ppf(0.5 + widened_level(n) / 2)
    assert z / math.sqrt(n) == pytest.approx(stats.t.ppf(0.975, n - 1) / math.sqrt(n - 1))
    assert widened_level(10_000) == pytest.approx(0.95, abs=1e-3)


def test_a_batch_row_equals_the_same_sample_alone():
    batch = np.random.default_rng(5).lognormal(0, 1, (7, 8))
    low, high = mean_ci(batch, seed=2)
    for k in (0, 3, 6):  # the same resamples; their means may round differently in a batch, which can move
        # BCa's bias correction a little where a resample's mean ties with the sample's (a permuted sample)
        assert mean_ci(batch[k], seed=2) == pytest.approx((low[k], high[k]), abs=0.01 * (high[k] - low[k]))


@pytest.mark.parametrize("n", [3, 4, 5])
def test_under_six_items_it_is_students_t_interval(n):
    x = np.random.default_rng(n).normal(10, 2, n)
    ref = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
    assert mean_ci(x) == pytest.approx(ref, rel=1e-12)


def test_degenerate_samples():
    assert mean_ci([4.0] * 8) == (4.0, 4.0)  # constant: zero width, no scipy warning
    assert mean_ci([4.0] * 4) == (4.0, 4.0)
    assert all(math.isnan(v) for v in mean_ci([1.0, 2.0]))  # under 3 values: none
    assert all(math.isnan(v) for v in mean_ci([]))
    assert mean_ci([1.0, np.nan, 2.0, 3.0, np.inf]) == mean_ci([1.0, 2.0, 3.0])  # non-finite values dropped
    low, high = mean_ci(np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]))
    assert (low[0], high[0]) == (1.0, 1.0) and low[1] < 1.0 < 3.0 < high[1]


def test_ties_and_a_skewed_zero_one_sample_stay_finite_and_ordered():
    x = np.array([0.0] * 10 + [1.0] * 2)  # e.g. word error rates: mostly zero
    low, high = mean_ci(x)
    assert 0.0 <= low <= x.mean() <= high <= 1.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="batch of samples must hold finite values"):
        mean_ci(np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match=r"level: expected a coverage in \(0, 1\), got 95"):
        mean_ci([1.0, 2.0, 3.0], level=95)
