"""Paired tests (Wilcoxon, t, sign flip) against scipy and exhaustive enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from evalkit.stats.paired import (
    TestResult,
    one_sample_t,
    paired_t,
    sign_flip,
    smallest_wilcoxon_p,
    wilcoxon,
)


def test_wilcoxon_equals_scipy_and_drops_zero_differences():
    d = np.array([1.5, -0.5, 2.0, 0.0, 3.0, 2.5, -1.0, 4.0])
    expected = stats.wilcoxon(d[d != 0])
    got = wilcoxon(d)
    assert got == TestResult("wilcoxon", float(expected.statistic), float(expected.pvalue))


def test_wilcoxon_degenerate_inputs():
    assert wilcoxon([0.0, 0.0, 0.0]) == TestResult("wilcoxon", 0.0, 1.0)
    empty = wilcoxon([])
    assert math.isnan(empty.p) and math.isnan(empty.statistic)


@pytest.mark.parametrize("n", [1, 3, 6, 10])
def test_smallest_wilcoxon_p_is_the_exact_p_of_all_positive_differences(n):
    d = np.arange(1.0, n + 1)
    assert smallest_wilcoxon_p(n) == pytest.approx(stats.wilcoxon(d, method="exact").pvalue)
    assert wilcoxon(d).p == pytest.approx(smallest_wilcoxon_p(n))


def test_paired_t_equals_scipys_related_samples_test():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=9), rng.normal(size=9) + 0.5
    expected = stats.ttest_rel(a, b)
    got = paired_t(a - b)
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert got.p == pytest.approx(expected.pvalue, rel=1e-12)
    assert got.df == 8 and got.test == "t"


def test_one_sample_t_one_sided_against_a_value():
    x = [0.6, 0.7, 0.55, 0.9, 0.4]
    expected = stats.ttest_1samp(x, 0.5, alternative="greater")
    assert one_sample_t(x, 0.5, "greater").p == pytest.approx(expected.pvalue, rel=1e-12)


def test_t_without_spread_or_values():
    assert paired_t([0.0, 0.0, 0.0]).p == 1.0  # no difference at all
    assert paired_t([2.0, 2.0, 2.0]).p == 0.0  # a difference with no noise: t is infinite
    assert math.isnan(paired_t([1.0]).p) and math.isnan(paired_t([]).p)


def test_sign_flip_exact_matches_enumeration():
    d = [3.0, -1.0, 4.0, 1.5, 2.0, -0.5]
    flips = [abs(sum(s * x for s, x in zip(signs, d, strict=True)))
             for signs in itertools.product([1, -1], repeat=len(d))]
    expected = sum(f >= abs(sum(d)) - 1e-12 for f in flips) / len(flips)
    result = sign_flip(d)
    assert result.p == pytest.approx(expected) and result.statistic == pytest.approx(sum(d))
    assert sign_flip([0.0, 0.0]).p == 1.0
    assert math.isnan(sign_flip([]).p)


def test_sign_flip_random_flips_approach_the_exact_value():
    d = np.random.default_rng(3).normal(0.3, 1.0, 12)
    exact = sign_flip(d).p
    sampled = sign_flip(d, max_exact=4, n_random=20_000, seed=1).p
    assert sampled == pytest.approx(exact, abs=0.02)  # binomial SE of 20 000 draws is under 0.004
    assert sign_flip(d, max_exact=4, n_random=2_000, seed=1) == sign_flip(d, max_exact=4, n_random=2_000, seed=1)
