"""Panel-size planning: the simulation's test is the mixed model's, its power matches the noncentral t, and the
planned panel reaches the target power when panels are simulated and analysed by ``analyze_mushra``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evalkit.listening.model import Rating
from evalkit.stats.mixed_model import contrast, fit_mixed
from evalkit.stats.multiple import holm
from evalkit.stats.power import (
    PanelModel,
    _balanced_test,
    assessors_needed,
    minimum_detectable_difference,
    power,
)
from tests.stats.test_mixed_model import simulate


def _ratings(y: np.ndarray) -> list[Rating]:
    n, m, k = y.shape
    return [Rating(f"a{a}", f"i{i}", f"c{c}", float(y[a, i, c])) for a in range(n) for i in range(m) for c in range(k)]


@pytest.mark.parametrize("sd_ac", [6.0, 0.5])  # interior, and assessor×condition at the REML boundary
def test_simulated_panel_test_is_the_mixed_model_test(sd_ac):
    rng = np.random.default_rng(2)
    n, m, k = 6, 3, 4
    checked = 0
    for _ in range(6):
        y = (rng.normal(0, sd_ac, (n, 1, k)) + rng.normal(0, 4, (n, m, 1)) + rng.normal(0, 8, (n, m, k))
             + rng.normal(0, 5, (n, 1, 1)))
        d, se, df = _balanced_test(y[None])
        fit = fit_mixed(_ratings(y))
        if fit.variance["assessor"] == 0:  # the closed form does not follow that boundary
            continue
        c = contrast(fit, "c0", "c1")
        assert d[0] == pytest.approx(c.estimate)
        assert se[0] == pytest.approx(c.se, rel=1e-4)
        assert df[0] == pytest.approx(c.df, rel=1e-3)
        checked += 1
    assert checked >= 3


def test_power_matches_the_noncentral_t():
    # with a large assessor×condition component the boundary never bites: power is the noncentral t's
    model = PanelModel(assessor_x_condition=40.0, assessor_x_item=10.0, residual=50.0, items=4, conditions=5)
    n, diff, alpha = 10, 8.0, 0.05 / 3
    df = (n - 1) * (model.conditions - 1)
    ncp = diff / math.sqrt(2 * (model.assessor_x_condition + model.residual / model.items) / n)
    crit = stats.t.ppf(1 - alpha / 2, df)
    expected = stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)
    assert power(model, n, diff, alpha=0.05, pairs=3, sims=4000, seed=1) == pytest.approx(expected, abs=0.025)
    assert power(model, n, 0.0, alpha=0.05, pairs=1, sims=4000, seed=1) == pytest.approx(0.05, abs=0.012)


def test_minimum_detectable_difference_has_the_target_power_and_shrinks_with_assessors():
    model = PanelModel(30.0, 10.0, 60.0, items=5, conditions=6)
    mdd7 = minimum_detectable_difference(model, 7, 0.8, 0.05, pairs=15, sims=2000, seed=0)
    mdd20 = minimum_detectable_difference(model, 20, 0.8, 0.05, pairs=15, sims=2000, seed=0)
    assert 0 < mdd20 < mdd7
    assert power(model, 7, mdd7, 0.05, 15, sims=2000, seed=0) == pytest.approx(0.8, abs=0.01)
    need = assessors_needed(model, mdd7, 0.8, 0.05, pairs=15, sims=2000, seed=0)
    assert need.assessors == 7  # the planning and the MDD are the two readings of one power curve


@pytest.mark.slow
def test_planned_panel_reaches_its_power_when_analysed_by_the_real_analysis():
    pilot = simulate(5, 3, {"z": 80.0, "x": 60.0, "y": 60.0}, seed=21, sd_ac=5.0, sd_e=7.0)
    fit = fit_mixed(pilot)
    model = PanelModel.from_fit(fit)
    difference, pairs = 6.0, 3
    need = assessors_needed(model, difference, 0.8, 0.05, pairs=pairs, sims=2000, seed=0)
    assert need.assessors is not None and need.power >= 0.8
    # 200 panels of the planned size drawn from the pilot's fitted model, analysed as a user would (Holm, 3 pairs)
    rng = np.random.default_rng(99)
    v = fit.variance
    n, m = need.assessors, len(fit.items)
    bonferroni = holm_hits = 0
    for _ in range(200):
        ratings = []
        for a in range(n):
            w = rng.normal(0, math.sqrt(v["assessor_x_condition"]), 3)
            u = rng.normal(0, math.sqrt(v["assessor_x_item"]), m)
            for i in range(m):
                for k, (c, mu) in enumerate((("z", 80.0), ("x", 60.0 + difference), ("y", 60.0))):
                    score = mu + w[k] + u[i] + rng.normal(0, math.sqrt(v["residual"]))
                    ratings.append(Rating(f"a{a}", f"i{i}", c, score))
        panel_fit = fit_mixed(ratings)  # what analyze_mushra runs, without its per-item summaries
        p = [contrast(panel_fit, a, b).p for a, b in (("x", "y"), ("x", "z"), ("y", "z"))]
        bonferroni += p[0] < 0.05 / pairs
        holm_hits += holm(p)[0] < 0.05
    # the plan tests each pair at alpha / pairs: that power is what it promises ...
    assert bonferroni / 200 == pytest.approx(need.power, abs=0.05)
    # ... and Holm (here the other pairs are clear, so x vs y often gets the whole alpha) does at least as well
    assert holm_hits >= bonferroni


def test_needs_more_than_the_cap_and_zero_difference():
    model = PanelModel(400.0, 0.0, 400.0, items=1, conditions=2)
    huge = assessors_needed(model, 0.5, 0.8, 0.05, pairs=1, sims=200, seed=0, max_assessors=16)
    assert huge.assessors is None and huge.power < 0.8
    assert assessors_needed(model, 0.0).assessors is None
    with pytest.raises(ValueError, match="at least 2 assessors"):
        power(model, 1, 5.0)
