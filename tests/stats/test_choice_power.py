"""AB/ABX panel power: the simulation against exact enumeration of every panel outcome, whose p-values come from
scipy's own ``ttest_1samp`` (and the sign-flip corner by hand)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from evalkit.stats.choice_power import choice_power, listeners_needed, share_test_p


def _exact_power(listeners: int, answers: int, preference: float, abx: bool, alpha: float = 0.05) -> float:
    pmf = stats.binom.pmf(np.arange(answers + 1), answers, preference)
    total = 0.0
    for counts in itertools.product(range(answers + 1), repeat=listeners):
        shares = np.array(counts) / answers
        if shares.std() == 0:
            d = shares[0] - 0.5
            p = 1.0 if d == 0 or (abx and d < 0) else (1.0 if abx else 2.0) / 2 ** listeners
        else:
            p = stats.ttest_1samp(shares, 0.5, alternative="greater" if abx else "two-sided").pvalue
        if p < alpha:
            total += float(np.prod(pmf[list(counts)]))
    return total


@pytest.mark.parametrize(("abx", "preference"), [(False, 0.75), (False, 0.5), (True, 0.7)])
def test_simulated_power_matches_exact_enumeration(abx, preference):
    exact = _exact_power(5, 3, preference, abx)
    sims = 20_000
    simulated = choice_power(5, 3, preference, abx=abx, sims=sims, seed=1)
    se = math.sqrt(max(exact * (1 - exact), 1e-4) / sims)
    assert abs(simulated - exact) < 4 * se, (simulated, exact)


def test_share_test_is_scipys_t_test_and_the_sign_flip_when_shares_are_equal():
    shares = [0.5, 0.75, 1.0, 0.75, 0.25]
    assert share_test_p(shares)[0] == pytest.approx(stats.ttest_1samp(shares, 0.5).pvalue)
    assert share_test_p(shares, abx=True)[0] == pytest.approx(
        stats.ttest_1samp(shares, 0.5, alternative="greater").pvalue)
    assert share_test_p([1.0] * 7)[0] == 2 / 128 and share_test_p([1.0] * 7, abx=True)[0] == 1 / 128
    assert share_test_p([0.0] * 7, abx=True)[0] == 1.0 and share_test_p([0.5] * 7)[0] == 1.0
    assert math.isnan(share_test_p([1.0])[0])


def test_listeners_needed_is_the_first_panel_reaching_the_target():
    n = listeners_needed(4, 0.8, target=0.8, sims=2000)
    assert n is not None and n > 2
    assert choice_power(n, 4, 0.8, sims=2000) >= 0.8
    assert all(choice_power(k, 4, 0.8, sims=2000) < 0.8 for k in range(2, n))
    assert listeners_needed(4, 0.5, target=0.8, sims=200) is None  # no effect: never powered


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="listeners >= 2"):
        choice_power(1, 3, 0.7)
