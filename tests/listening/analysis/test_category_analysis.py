"""ACR/DCR MOS and BS.1116 difference grades (issue 27, point 9): intervals against scipy.stats.t and statsmodels'
DescrStatsW, mixed-model contrasts against statsmodels MixedLM, BS.1116 pairing and post-screening by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.listening.analysis.grades import (
    analyze_grades,
    difference_grades,
    screen_hidden_reference,
    summarize_grades,
)
from evalkit.listening.model import REFERENCE, Rating


def acr_panel(n_listeners: int = 8, n_items: int = 4, seed: int = 0) -> list[Rating]:
    """Integer 1-5 grades: condition means + listener bias + listener×condition + noise, rounded and clipped."""
    rng = np.random.default_rng(seed)
    means = {REFERENCE: 4.5, "opus": 3.6, "mp3": 2.4}
    bias = rng.normal(0, 0.5, n_listeners)
    inter = rng.normal(0, 0.3, (n_listeners, len(means)))
    out = []
    for a in range(n_listeners):
        for i in range(n_items):
            for k, (c, m) in enumerate(means.items()):
                y = m + bias[a] + inter[a, k] + rng.normal(0, 0.6)
                out.append(Rating(f"L{a}", f"i{i}", c, float(np.clip(np.rint(y), 1, 5))))
    return out


def test_mos_intervals_match_scipy_and_statsmodels():
    from statsmodels.stats.weightstats import DescrStatsW

    ratings = acr_panel()
    result = analyze_grades(ratings)
    for condition, summary in result.conditions.items():
        grades = [r for r in ratings if r.condition == condition]
        by_listener = pd.DataFrame([vars(r) for r in grades]).groupby("assessor")["score"].mean().to_numpy()
        low, high = stats.t.interval(0.95, len(by_listener) - 1, loc=by_listener.mean(),
                                     scale=stats.sem(by_listener))
        assert (summary.mean, summary.ci_low, summary.ci_high) == pytest.approx(
            (by_listener.mean(), max(low, 1.0), min(high, 5.0)))
        assert summary.n == 8 and summary.ratings == 32
        flat = np.array([r.score for r in grades])
        low, high = DescrStatsW(flat).tconfint_mean(0.05)  # P.800: over all ratings
        assert (summary.ratings_mean, summary.ratings_ci_low, summary.ratings_ci_high) == pytest.approx(
            (flat.mean(), max(low, 1.0), min(high, 5.0)))
        assert summary.ratings_ci_high - summary.ratings_ci_low < summary.ci_high - summary.ci_low  # narrower
    assert list(result.conditions) == [REFERENCE, "opus", "mp3"]  # best first


def test_mos_interval_is_clipped_to_the_scale():
    s = summarize_grades({"a": [5, 5], "b": [5, 4], "c": [5, 5]})  # listener means 5, 4.5, 5: t CI passes 5
    assert s.ci_high == 5.0 and s.ci_low < s.mean < 5.0


def test_comparisons_match_statsmodels_mixedlm():
    """The mixed-model contrast of two conditions equals statsmodels MixedLM's (same model as a formula): the
    estimate, and the standard error at the variance components each fit found."""
    import statsmodels.formula.api as smf

    ratings = acr_panel(seed=3)
    result = analyze_grades(ratings)
    frame = pd.DataFrame([vars(r) for r in ratings])
    model = smf.mixedlm("score ~ 0 + C(condition) + C(item)", frame, groups="assessor", re_formula="1",
                        vc_formula={"ac": "0 + C(condition)", "ai": "0 + C(item)"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(reml=True, method="lbfgs", maxiter=5000)
    names = {c: f"C(condition)[{c}]" for c in (REFERENCE, "opus", "mp3")}
    cov = fit.cov_params()
    for c in result.comparisons:
        a, b = names[c.a], names[c.b]
        estimate = fit.fe_params[a] - fit.fe_params[b]
        se = float(np.sqrt(cov.loc[a, a] + cov.loc[b, b] - 2 * cov.loc[a, b]))
        assert c.mean_difference == pytest.approx(estimate, abs=1e-3)
        assert (c.ci_high - c.ci_low) / 2 / stats.t.ppf(0.975, c.df) == pytest.approx(se, rel=2e-2)
        assert c.test == "mixed" and c.n == 8
    assert [c.p_holm for c in result.comparisons] == pytest.approx(_holm([c.p for c in result.comparisons]))


def _holm(p: list[float]) -> list[float]:
    """Holm by hand: sorted ascending, p_(i)·(m − i), running maximum."""
    order = np.argsort(p)
    out, running = [0.0] * len(p), 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, p[idx] * (len(p) - rank)))
        out[idx] = running
    return out


def test_other_tests_pair_listener_means():
    ratings = acr_panel(seed=5)
    result = analyze_grades(ratings, test="t", versus=REFERENCE)
    means = pd.DataFrame([vars(r) for r in ratings]).groupby(["condition", "assessor"])["score"].mean()
    for c in result.comparisons:
        d = (means[c.a] - means[c.b]).to_numpy()
        assert c.a == REFERENCE and c.p == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
        assert c.mean_difference == pytest.approx(d.mean())
    with pytest.raises(ValueError, match="test: expected one of"):
        analyze_grades(ratings, test="anova")


def test_difference_grades_pair_the_two_grades_of_a_trial():
    rows = [("a", 0, Rating("a", "i0", REFERENCE, 5.0)), ("a", 0, Rating("a", "i0", "opus", 3.4)),
            ("a", 1, Rating("a", "i1", "opus", 4.8)), ("a", 1, Rating("a", "i1", REFERENCE, 4.1)),
            ("b", 0, Rating("b", "i0", "opus", 2.0)),  # a trial with one grade only: skipped
            ("b", 1, Rating("b", "i1", REFERENCE, 4.0)), ("b", 1, Rating("b", "i1", "mp3", 4.0))]
    assert difference_grades(rows) == [Rating("a", "i0", "opus", -1.6), Rating("a", "i1", "opus", 0.7),
                                       Rating("b", "i1", "mp3", 0.0)]


def test_bs1116_post_screening_counts_hidden_reference_graded_below():
    good = [Rating("good", f"i{k}", "opus", -1.0 if k else 0.3) for k in range(10)]  # 1 of 10: kept
    bad = [Rating("bad", f"i{k}", "opus", 0.5 if k < 3 else -0.5) for k in range(10)]  # 3 of 10: out
    ties = [Rating("ties", f"i{k}", "opus", 0.0) for k in range(10)]  # equal grades are not "below"
    excluded = screen_hidden_reference(good + bad + ties)
    assert [(e.assessor, e.reason) for e in excluded] == [
        ("bad", "hidden reference graded below the coded signal in 3 of 10 trials (30%)")]
    result = analyze_grades(good + bad + ties, scale=(-4.0, 4.0), screen=True)
    assert [e.assessor for e in result.excluded] == ["bad"] and result.assessors == 2
    kept = [r.score for r in good + ties]
    assert result.conditions["opus"].ratings_mean == pytest.approx(np.mean(kept))
    assert result.model_error and "2 conditions" in result.model_error  # one condition: nothing to compare
