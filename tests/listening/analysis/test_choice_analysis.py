"""AB/ABX group tests over listeners (answers are nested in listeners) against scipy on the per-listener shares."""

from __future__ import annotations

import pytest
from scipy import stats

from evalkit.listening.analysis.choices import analyze_choices
from evalkit.listening.model import Choice


def _abx(listener: str, correct: int, total: int) -> list[Choice]:
    return [Choice(listener, f"i{k}", "a", "b", "a" if k < correct else "b", x="a") for k in range(total)]


def test_abx_group_test_is_one_sided_t_over_listener_shares():
    choices = _abx("L1", 10, 10) + _abx("L2", 6, 10) + _abx("L3", 5, 10) + _abx("L4", 9, 10)
    (pair,) = analyze_choices(choices, abx=True)
    shares = [1.0, 0.6, 0.5, 0.9]
    assert pair.share == pytest.approx(sum(shares) / 4)
    assert pair.p == pytest.approx(stats.ttest_1samp(shares, 0.5, alternative="greater").pvalue)
    ci = stats.ttest_1samp(shares, 0.5).confidence_interval()
    assert (pair.ci_low, pair.ci_high) == pytest.approx((ci.low, min(ci.high, 1.0)))
    # pooled: 30 of 40 treated as independent, a smaller p than the listeners support
    assert pair.p_pooled == pytest.approx(stats.binomtest(30, 40, 0.5, alternative="greater").pvalue)
    assert pair.p_pooled < pair.p
    # individually: 10/10 (p = 1/1024) and 9/10 (p = 11/1024) discriminate; 6/10 and 5/10 do not
    assert pair.discriminating_listeners == 2
    assert pair.per_listener["L4"]["p"] == pytest.approx(11 / 1024)
    assert [pair.per_listener[k]["discriminates"] for k in ("L1", "L2", "L3", "L4")] == [True, False, False, True]
    assert pair.listeners == 4 and "one-sample t" in pair.group_test


def test_ab_two_sided_and_no_preference_left_out_of_shares():
    choices = [Choice("L1", f"i{k}", "x", "y", "x" if k < 3 else None) for k in range(4)]  # 3 of 3 decisive
    choices += [Choice("L2", f"i{k}", "x", "y", "x" if k < 2 else "y") for k in range(4)]  # 2 of 4
    choices += [Choice("L3", f"i{k}", "x", "y", "x" if k < 3 else "y") for k in range(4)]  # 3 of 4
    (pair,) = analyze_choices(choices)
    assert pair.p == pytest.approx(stats.ttest_1samp([1.0, 0.5, 0.75], 0.5).pvalue)
    assert pair.no_preference == 1 and pair.per_listener["L1"]["share"] == 1.0


def test_equal_shares_use_the_exact_sign_flip():
    (pair,) = analyze_choices(_abx("L1", 8, 8) + _abx("L2", 8, 8) + _abx("L3", 8, 8), abx=True)
    assert pair.p == pytest.approx(1 / 8)  # one-sided: only the all-positive flip of 3 listeners
    assert "sign-flip" in pair.group_test
    (chance,) = analyze_choices(_abx("L1", 4, 8) + _abx("L2", 4, 8), abx=True)
    assert chance.p == 1.0
