"""Listening-test statistics against hand-computed values and scipy's own tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from evalkit.listening.analysis.choices import analyze_choices
from evalkit.listening.analysis.mushra import analyze_mushra, screen_assessors
from evalkit.listening.model import Choice, Rating
from evalkit.stats.multiple import holm
from evalkit.stats.proportion import wilson_interval

T975_2 = 4.302652729911275  # t quantile (0.975, 2 dof), from tables


def _assessor(name: str, ref: list[float], mid: list[float], codec: list[float]) -> list[Rating]:
    out = []
    for k in range(len(ref)):
        item = f"item{k:02d}"
        out += [Rating(name, item, "reference", ref[k]), Rating(name, item, "anchor70", mid[k]),
                Rating(name, item, "anchor35", 20.0), Rating(name, item, "codec", codec[k])]
    return out


def _panel() -> list[Rating]:
    """Three good assessors (codec means 60, 70, 80 with spread within each), one with 1 of 10 hidden references
    below 90 (kept: 10 %), one with 3 of 10 (excluded: 30 %), one with the mid anchor above 90 twice (20 %)."""
    spread = [-10, 10] * 5  # mean 0: the assessor's mean is exactly the centre
    good_ref, good_mid = [100.0] * 10, [50.0] * 10
    ratings = []
    ratings += _assessor("a1", good_ref, good_mid, [60 + s for s in spread])
    ratings += _assessor("a2", good_ref, good_mid, [70 + s for s in spread])
    ratings += _assessor("a3", [85.0] + good_ref[1:], good_mid, [80 + s for s in spread])  # 1 of 10: kept
    ratings += _assessor("x3", [85.0, 80.0, 70.0] + good_ref[3:], good_mid, [0.0] * 10)  # 3 of 10: out
    ratings += _assessor("xm", good_ref, [95.0, 92.0] + good_mid[2:], [0.0] * 10)  # mid anchor 2 of 10: out
    return ratings


def test_post_screening_keeps_one_in_ten_and_excludes_three_in_ten():
    excluded = {e.assessor: e.reason for e in screen_assessors(_panel())}
    assert set(excluded) == {"x3", "xm"}
    assert excluded["x3"] == "hidden reference rated below 90 for 3 of 10 items (30%)"
    assert excluded["xm"] == "mid anchor rated above 90 for 2 of 10 items (20%)"


def test_post_screening_boundary_is_more_than_15_percent():
    # 3 of 20 items is exactly 15 %: kept; 4 of 20 (20 %) is not.
    ok = [Rating("a", f"i{k}", "reference", 80.0 if k < 3 else 100.0) for k in range(20)]
    bad = [Rating("b", f"i{k}", "reference", 80.0 if k < 4 else 100.0) for k in range(20)]
    assert [e.assessor for e in screen_assessors(ok + bad)] == ["b"]


def test_ci_is_student_t_over_assessor_means_not_raw_ratings():
    result = analyze_mushra(_panel())
    codec = result.conditions["codec"]
    # Kept assessors a1, a2, a3 have codec means 60, 70, 80: mean 70, s = 10, n = 3 (not 30 ratings).
    half = T975_2 * 10 / math.sqrt(3)
    assert codec.n == 3
    assert codec.mean == pytest.approx(70.0)
    assert codec.ci_low == pytest.approx(70 - half)
    assert codec.ci_high == pytest.approx(70 + half)
    assert codec.median == pytest.approx(70.0)
    assert codec.iqr == pytest.approx(10.0)  # quartiles of (60, 70, 80): 65 and 75
    assert result.assessors == 3
    assert [e.assessor for e in result.excluded] == ["x3", "xm"]
    # Per item: item00 has codec ratings 50, 60, 70 (spread -10): mean 60, same half-width.
    item = result.items["item00"]["codec"]
    assert (item.mean, item.n) == (pytest.approx(60.0), 3)
    assert item.ci_high - item.mean == pytest.approx(half)


def test_paired_comparisons_match_scipy_wilcoxon_and_holm():
    rng = np.random.default_rng(3)
    ratings = []
    for a in range(8):
        for i in range(4):
            ratings += [Rating(f"a{a}", f"i{i}", "reference", 100.0),
                        Rating(f"a{a}", f"i{i}", "good", float(rng.integers(70, 90))),
                        Rating(f"a{a}", f"i{i}", "bad", float(rng.integers(20, 60)))]
    result = analyze_mushra(ratings, test="wilcoxon")
    means = {c: [np.mean([r.score for r in ratings if r.assessor == f"a{a}" and r.condition == c]) for a in range(8)]
             for c in ("reference", "good", "bad")}
    expected = {}
    for a, b in itertools.combinations(sorted(means), 2):
        expected[(a, b)] = stats.wilcoxon(np.subtract(means[a], means[b])).pvalue
    got = {(c.a, c.b): c for c in result.comparisons}
    assert set(got) == set(expected)
    for key, p in expected.items():
        assert got[key].p == pytest.approx(p)
        assert got[key].n == 8
    pairs = list(expected)
    adjusted = holm([expected[k] for k in pairs])
    for key, p_adj in zip(pairs, adjusted, strict=True):
        assert got[key].p_holm == pytest.approx(p_adj)
    assert all(c.p_holm >= c.p for c in result.comparisons)


def test_ab_pooled_counts_binomial_and_per_listener():
    choices = [Choice("L1", f"i{k}", "klt", "base", "klt") for k in range(5)]
    choices += [Choice("L2", "i0", "klt", "base", "klt"), Choice("L2", "i1", "klt", "base", "klt"),
                Choice("L2", "i2", "klt", "base", "base"), Choice("L2", "i3", "klt", "base", "base"),
                Choice("L2", "i4", "klt", "base", None)]
    (pair,) = analyze_choices(choices)
    assert (pair.n, pair.prefer_a, pair.prefer_b, pair.no_preference) == (10, 7, 2, 1)
    # pooled (answers as independent): exact two-sided binomial on 9 decisive answers: 2·P(X ≥ 7) = 2·46/512
    assert pair.p_pooled == pytest.approx(92 / 512)
    assert pair.pooled_share == pytest.approx(7 / 9)
    assert (pair.pooled_ci_low, pair.pooled_ci_high) == pytest.approx(wilson_interval(7, 9))
    # over listeners: shares 5/5 and 2/4, one-sample t against 0.5 (scipy on the same two numbers)
    assert pair.share == pytest.approx(0.75)
    assert pair.p == pytest.approx(stats.ttest_1samp([1.0, 0.5], 0.5).pvalue)
    assert pair.listeners == 2
    assert {k: pair.per_listener["L2"][k] for k in ("prefer_a", "prefer_b", "no_preference")} == \
        {"prefer_a": 2, "prefer_b": 2, "no_preference": 1}
    assert pair.per_listener["L1"]["p"] == pytest.approx(2 / 32)  # 5 of 5 decisive, two-sided exact


def test_abx_one_sided_binomial():
    choices = [Choice("L1", f"i{k}", "a", "b", "a" if k < 9 else "b", x="a") for k in range(10)]
    (pair,) = analyze_choices(choices, abx=True)
    assert pair.correct == 9
    assert pair.p_pooled == pytest.approx(11 / 1024)  # P(X ≥ 9 | n = 10, 1/2)
    assert pair.p == pytest.approx(11 / 1024)  # one listener: the group test is that listener's binomial test
    assert pair.share == pytest.approx(0.9)
    assert pair.discriminating_listeners == 1
