"""Tests of paired differences (or of one sample against a value): Wilcoxon signed-rank, Student's t and the
sign-flip permutation test, each written once and returning a :class:`TestResult`.

Conventions shared by the three: no differences give NaN; differences that are all zero give p = 1 (nothing
speaks against the null; scipy would return NaN or warn).

>>> wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).p  # 6 positive differences: exact p = 2 / 2^6
0.03125
>>> sign_flip([1.0, 2.0, 3.0]).p  # 8 flips, sums ±6, ±4, ±2, ±0: |sum| ≥ 6 in 2 of 8
0.25
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TestResult:
    """One test: ``statistic`` (Wilcoxon: the smaller signed-rank sum; t: the t statistic; sign flip: the sum
    of the differences, in their unit), ``p`` (in [0, 1]), ``df`` (t only, else NaN) and the ``test``'s name.
    NaN statistic and p when the test is undefined."""

    __test__ = False  # not a pytest test class, despite the name

    test: str
    statistic: float
    p: float
    df: float = math.nan


def _as_array(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


def wilcoxon(differences: Sequence[float]) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of a zero median difference (scipy; zero differences dropped, exact
    for small tie-free samples). All-zero differences give statistic 0 and p 1.
    """
    from scipy import stats

    d = _as_array(differences)
    if len(d) == 0:
        return TestResult("wilcoxon", math.nan, math.nan)
    if not np.any(d != 0):
        return TestResult("wilcoxon", 0.0, 1.0)
    result = stats.wilcoxon(d, zero_method="wilcox")
    return TestResult("wilcoxon", float(result.statistic), float(result.pvalue))


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided exact Wilcoxon signed-rank p-value with ``n`` non-zero differences: 2 / 2^n.

    >>> smallest_wilcoxon_p(3), smallest_wilcoxon_p(12)
    (0.25, 0.00048828125)
    """
    return min(1.0, 2.0 / 2.0 ** n) if n > 0 else 1.0


def one_sample_t(values: Sequence[float], popmean: float = 0.0, alternative: str = "two-sided") -> TestResult:
    """Student's one-sample t test of mean ``popmean`` (scipy ``ttest_1samp``), df = n − 1.

    Fewer than 2 values give NaN; values without spread give p = 1 when their mean is ``popmean`` and
    p = 0 otherwise (an infinite t), with a NaN statistic.
    """
    from scipy import stats

    x = _as_array(values)
    if len(x) < 2:
        return TestResult("t", math.nan, math.nan)
    df = float(len(x) - 1)
    if float(x.std(ddof=1)) == 0:
        return TestResult("t", math.nan, 1.0 if float(x.mean()) == popmean else 0.0, df)
    result = stats.ttest_1samp(x, popmean, alternative=alternative)
    return TestResult("t", float(result.statistic), float(result.pvalue), df)


def paired_t(differences: Sequence[float]) -> TestResult:
    """Two-sided paired t test: :func:`one_sample_t` of the differences against 0."""
    return one_sample_t(differences, 0.0)


def sign_flip(differences: Sequence[float], *, max_exact: int = 16, n_random: int = 100_000,
              seed: int = 0) -> TestResult:
    """Two-sided paired permutation test of a zero mean difference: the share of the 2^n sign flips whose
    |sum| is at least the observed one (exact up to ``max_exact`` pairs, else ``n_random`` seeded random
    flips). Sums within 1e-9 of the observed one (relative) count as equal, so float noise breaks no tie.
    """
    d = _as_array(differences)
    n = len(d)
    if n == 0:
        return TestResult("sign-flip", math.nan, math.nan)
    observed = abs(d.sum()) - 1e-9 * max(1.0, float(np.abs(d).sum()))
    if n <= max_exact:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(n_random, n))
    return TestResult("sign-flip", float(d.sum()), float(np.mean(np.abs(signs @ d) >= observed)))
