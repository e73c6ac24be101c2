import math

import numpy as np
import pytest
from scipy import stats

from evalkit.stats.correlation import pearson, spearman


def test_coefficients_equal_scipy_and_intervals_the_fisher_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = 0.6 * x + rng.normal(size=30)
    y[3] = y[7]  # a tie for the ranks
    p, s = pearson(x, y), spearman(x, y)
    assert p.value == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert s.value == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    z = stats.norm.ppf(0.975)
    assert (p.ci_low, p.ci_high) == pytest.approx((math.tanh(math.atanh(p.value) - z / math.sqrt(27)),
                                                   math.tanh(math.atanh(p.value) + z / math.sqrt(27))))
    se = math.sqrt((1 + s.value ** 2 / 2) / 27)
    assert s.ci_high - s.ci_low > 0 and s.ci_low == pytest.approx(math.tanh(math.atanh(s.value) - z * se))
    assert p.n == s.n == 30


def test_undefined_cases_are_nan_with_a_reason():
    assert math.isnan(pearson([1, 2, 3], [1, 2, 4]).value)
    assert "need at least 4" in pearson([1, 2, 3], [1, 2, 4]).reason
    assert "constant" in spearman([1, 1, 1, 1], [1, 2, 3, 4]).reason
    assert pearson([1, 2, np.nan, 4, 5, 6], [2, 1, 3, np.inf, 5, 7]).n == 4  # non-finite pairs dropped
    with pytest.raises(ValueError, match="differ in length"):
        pearson([1, 2, 3, 4], [1, 2, 3])
