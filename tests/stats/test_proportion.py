"""Binomial test and Wilson interval against counting and the Wilson formula written out."""

from __future__ import annotations

import math

import pytest

from evalkit.stats.proportion import binomial_p, wilson_interval

Z975 = 1.959963984540054  # normal quantile 0.975, from tables


def test_binomial_p_equals_counting_outcomes():
    # P(X >= 8 | n = 10, 1/2) = (45 + 10 + 1) / 1024; two-sided doubles it (symmetric null)
    assert binomial_p(8, 10, "greater") == pytest.approx(56 / 1024)
    assert binomial_p(8, 10) == pytest.approx(112 / 1024)
    assert binomial_p(2, 10, "less") == pytest.approx(56 / 1024)
    # against 1/3: P(X >= 3 | n = 3) = 1/27
    assert binomial_p(3, 3, "greater", p0=1 / 3) == pytest.approx(1 / 27)
    assert math.isnan(binomial_p(0, 0))


@pytest.mark.parametrize("successes, n", [(7, 9), (0, 5), (5, 5), (1, 40)])
def test_wilson_equals_the_formula(successes, n):
    p = successes / n
    centre, half = p + Z975 ** 2 / (2 * n), Z975 * math.sqrt(p * (1 - p) / n + Z975 ** 2 / (4 * n * n))
    low, high = wilson_interval(successes, n)
    assert low == pytest.approx(max(0.0, (centre - half) / (1 + Z975 ** 2 / n)), abs=1e-12)
    assert high == pytest.approx(min(1.0, (centre + half) / (1 + Z975 ** 2 / n)), abs=1e-12)
    assert 0.0 <= low <= p <= high <= 1.0


def test_wilson_with_no_trials_is_nan():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
