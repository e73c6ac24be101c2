"""Paired comparisons of variants on one metric against scipy (Wilcoxon, bootstrap) and statsmodels (Holm)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evalkit.runner.paired import Outcome, compare_pair, compare_variants, format_paired
from evalkit.stats.bootstrap import widened_level
from evalkit.stats.paired import smallest_wilcoxon_p


def _long(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"item_id": f"item{i:02d}", "codec_spec": spec, "metric": "m", "value": v}
            for spec, column in values.items() for i, v in enumerate(column)]
    return pd.DataFrame(rows)


@pytest.fixture
def scores():
    rng = np.random.default_rng(7)
    difficulty = rng.normal(0, 2.0, 14)  # item effects shared by every variant: pairing must cancel them
    return {"good": list(difficulty + 3.0 + rng.normal(0, 0.3, 14)),
            "mid": list(difficulty + 2.0 + rng.normal(0, 0.3, 14)),
            "same_as_mid": list(difficulty + 2.0 + rng.normal(0, 0.3, 14)),
            "bad": list(difficulty + rng.normal(0, 0.3, 14))}


def test_wilcoxon_and_mean_match_scipy_on_the_shared_items_only():
    a = np.array([1.0, 2.5, np.nan, 4.0, 5.5, 3.0, 2.0, 7.0])
    b = np.array([0.5, 2.0, 1.0, np.nan, 4.0, 3.5, 0.5, 5.0])
    d = compare_pair(a, b)
    shared = ~np.isnan(a) & ~np.isnan(b)
    expected = stats.wilcoxon(a[shared], b[shared])
    assert d.n == 6
    assert d.mean_difference == pytest.approx(np.mean(a[shared] - b[shared]))
    assert d.p == pytest.approx(expected.pvalue) and d.statistic == pytest.approx(expected.statistic)


def test_paired_ci_is_scipys_paired_bca_bootstrap_at_the_widened_level():
    rng = np.random.default_rng(1)
    a = rng.normal(3, 1, 20)
    b = a - 0.4 + rng.normal(0, 0.5, 20)
    ours = compare_pair(a, b, seed=3)
    ref = stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True, method="BCa",
                          n_resamples=2000, confidence_level=widened_level(20),
                          rng=np.random.default_rng(3)).confidence_interval
    assert (ours.ci_low, ours.ci_high) == pytest.approx((ref.low, ref.high), rel=1e-9)


def test_holm_over_every_pair_matches_statsmodels(scores):
    result = compare_variants(_long(scores), "m", higher_is_better=True, variants=list(scores))
    pairs = list(itertools.combinations(scores, 2))
    assert [(d.a, d.b) for d in result.pairs] == pairs
    raw = [stats.wilcoxon(np.subtract(scores[a], scores[b])).pvalue for a, b in pairs]
    assert [d.p for d in result.pairs] == pytest.approx(raw)
    assert [d.p_holm for d in result.pairs] == pytest.approx(multipletests(raw, method="holm")[1])


def test_verdicts_follow_the_metric_direction(scores):
    higher = compare_variants(_long(scores), "m", higher_is_better=True, variants=list(scores))
    assert higher.outcome("good", "bad") is Outcome.WIN and higher.outcome("bad", "good") is Outcome.LOSS
    assert higher.outcome("mid", "same_as_mid") is Outcome.TIE
    assert higher.record("good") == {"win": 3, "tie": 0, "loss": 0}
    lower = compare_variants(_long(scores), "m", higher_is_better=False, variants=list(scores))
    assert lower.outcome("good", "bad") is Outcome.LOSS and lower.record("bad") == {"win": 3, "tie": 0, "loss": 0}


def test_unpaired_differences_would_not_be_detected_but_paired_ones_are(scores):
    """Item effects (sd 2) swamp the 1-point gap between good and mid unpaired; paired, it is clear."""
    assert stats.mannwhitneyu(scores["good"], scores["mid"]).pvalue > 0.05
    result = compare_variants(_long(scores), "m", higher_is_better=True, variants=["good", "mid"])
    assert result.pairs[0].outcome is Outcome.WIN and result.pairs[0].ci_low > 0


def test_too_few_items_is_a_reason_not_a_verdict_and_the_power_note_says_so():
    few = _long({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 2.5], "c": [np.nan, np.nan, 1.0]})
    result = compare_variants(few, "m", higher_is_better=True, variants=["a", "b", "c"])
    by_pair = {(d.a, d.b): d for d in result.pairs}
    assert by_pair[("a", "c")].reason == "1 shared item with values, need 2" and math.isnan(by_pair[("a", "c")].p)
    assert result.outcome("a", "c") is None
    assert by_pair[("a", "b")].p == pytest.approx(smallest_wilcoxon_p(3))  # 3 positive differences: exact p = 0.25
    assert "cannot reach alpha" in result.power_note()
    assert result.to_json()["pairs"][1]["p"] is None  # NaN -> null


def test_all_zero_differences_are_a_tie_with_p_one():
    same = _long({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 2.0, 3.0, 4.0]})
    d = compare_variants(same, "m", higher_is_better=True).pairs[0]
    assert d.p == 1.0 and d.outcome is Outcome.TIE and d.mean_difference == 0.0


def test_the_text_table_prints_tiny_p_values_as_below_the_floor_not_zero():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, 30)
    result = compare_variants(_long({"a": list(base + 1.0), "b": list(base)}), "m", higher_is_better=True,
                              resamples=200)
    [pair] = result.pairs
    assert pair.p < 1e-4  # 30 items all in a's favour: exact Wilcoxon p = 2 / 2**30
    row = format_paired(result).splitlines()[2]
    assert "< 0.0001" in row and "0.0000" not in row
