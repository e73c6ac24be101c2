"""Bjøntegaard deltas against hand-computed values (curves linear in log-rate, where PCHIP is exact)."""

import math

import numpy as np
import pytest

from evalkit.stats.bdrate import bd_quality, bd_rate

RATES = np.array([6.0, 12.0, 24.0, 48.0])
HIGHER = np.array([2.1, 3.0, 3.6, 4.0])  # e.g. ViSQOL: concave in log-rate
LOWER = np.array([1.6, 1.15, 0.85, 0.7])  # e.g. mel distance


@pytest.mark.parametrize("quality", [HIGHER, LOWER], ids=["higher-is-better", "lower-is-better"])
def test_half_the_bitrate_is_minus_50_and_the_reverse_plus_100(quality):
    assert bd_rate(RATES, quality, RATES / 2, quality).value == pytest.approx(-50.0, abs=0.1)
    assert bd_rate(RATES / 2, quality, RATES, quality).value == pytest.approx(100.0, abs=0.1)
    assert bd_rate(RATES, quality, RATES, quality).value == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("quality", "sign"), [(HIGHER, 1), (LOWER, -1)], ids=["higher", "lower"])
def test_bd_quality_is_test_minus_anchor_at_equal_rate(quality, sign):
    """Half the bitrate for the same quality = a better metric value at equal rate: up for higher-is-better,
    down for lower-is-better."""
    assert np.sign(bd_quality(RATES, quality, RATES / 2, quality).value) == sign
    shifted = bd_quality(RATES, quality, RATES, quality + 0.25)
    assert shifted.value == pytest.approx(0.25, abs=1e-9) and shifted.reason is None


def test_hand_computed_deltas_with_different_sample_points_and_partial_overlap():
    """A: Q = log2 R (R = 1…16); B: Q = 2 log2 R (R = 1, 2, 4). Over q ∈ [0, 4]: ln R_B − ln R_A = −q ln2 / 2,
    mean −ln 2 → BD-rate = e^(−ln 2) − 1 = −50 %. Over ln R ∈ [0, ln 4]: Q_B − Q_A = ln R / ln 2, mean 1."""
    a_rates = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    b_rates = np.array([1.0, 2.0, 4.0])
    assert bd_rate(a_rates, np.log2(a_rates), b_rates, 2 * np.log2(b_rates)).value == pytest.approx(-50.0, abs=1e-6)
    assert bd_quality(a_rates, np.log2(a_rates), b_rates, 2 * np.log2(b_rates)).value == pytest.approx(1.0, abs=1e-6)


def test_shifted_sample_points_still_give_exactly_half():
    """B: Q = 2 + log2 R reaches A's (Q = 1 + log2 R) quality at half the rate, sampled at other rates."""
    a_rates, b_rates = np.array([8.0, 16.0, 32.0, 64.0]), np.array([5.0, 10.0, 20.0, 40.0])
    result = bd_rate(a_rates, 1 + np.log2(a_rates), b_rates, 2 + np.log2(b_rates))
    assert result.value == pytest.approx(-50.0, abs=1e-6)
    assert bd_quality(a_rates, 1 + np.log2(a_rates), b_rates, 2 + np.log2(b_rates)).value == pytest.approx(1.0)


def test_order_of_points_does_not_matter():
    order = [2, 0, 3, 1]
    assert bd_rate(RATES[order], HIGHER[order], RATES / 1.5, HIGHER).value == \
        pytest.approx(bd_rate(RATES, HIGHER, RATES / 1.5, HIGHER).value, abs=1e-9)


def test_undefined_cases_give_nan_and_the_reason():
    no_overlap = bd_rate(RATES, HIGHER, RATES, HIGHER + 10)
    assert math.isnan(no_overlap.value) and no_overlap.reason.startswith("no overlap: quality ranges")
    far = bd_quality(RATES, HIGHER, RATES * 100, HIGHER)
    assert math.isnan(far.value) and far.reason == ("no overlap: bitrate ranges [6, 48] (anchor) and "
                                                     "[600, 4800] (test) do not intersect")
    one = bd_rate(RATES, HIGHER, [12.0], [3.0])
    assert math.isnan(one.value) and one.reason == "test has 1 rate-quality point with finite values, need at least 2"
    nan_points = bd_rate(RATES, HIGHER, [12.0, 24.0], [3.0, math.nan])
    assert math.isnan(nan_points.value) and "test has 1 rate-quality point" in nan_points.reason
    flat = bd_rate(RATES, HIGHER, [12.0, 24.0, 48.0], [3.0, 3.0, 3.5])
    assert math.isnan(flat.value) and flat.reason == ("test has two points at the same quality; quality must be "
                                                      "strictly monotone")
    zero = bd_rate(RATES, HIGHER, [0.0, 24.0], [3.0, 3.5])
    assert math.isnan(zero.value) and zero.reason == "test has a non-positive bitrate"
    with pytest.raises(ValueError, match="anchor: rates and quality must be 1-d of equal length"):
        bd_rate(RATES, HIGHER[:3], RATES, HIGHER)


bjontegaard = pytest.importorskip("bjontegaard", reason="the reference package: pip install bjontegaard==1.3.0")


@pytest.mark.parametrize(("test_rates", "test_quality"), [
    (RATES / 1.2, HIGHER + 0.05), (RATES * 1.3, HIGHER - 0.1), (np.array([5.0, 9.0, 20.0, 40.0]), HIGHER)])
def test_monotonic_curves_with_enough_overlap_match_the_bjontegaard_package(test_rates, test_quality):
    """PCHIP deltas as the package computes them (its log10 rate axis gives the same percentages)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the package warns under 75 % overlap: none here
        rate = bjontegaard.bd_rate(RATES, HIGHER, test_rates, test_quality, method="pchip")
        psnr = bjontegaard.bd_psnr(RATES, HIGHER, test_rates, test_quality, method="pchip")
    ours_rate, ours_quality = bd_rate(RATES, HIGHER, test_rates, test_quality), bd_quality(RATES, HIGHER, test_rates,
                                                                                           test_quality)
    assert ours_rate.value == pytest.approx(rate, abs=1e-6) and ours_quality.value == pytest.approx(psnr, abs=1e-9)
    assert ours_rate.flags == () and ours_quality.flags == ()


def test_low_overlap_is_flagged_where_the_package_warns():
    test_quality = HIGHER + 0.9  # quality ranges [2.1, 4] and [3, 4.9]: share 1 / 2.8 = 36 %
    with pytest.warns(UserWarning, match="Insufficient curve overlap: '35.71'"):
        expected = bjontegaard.bd_rate(RATES, HIGHER, RATES, test_quality, method="pchip")
    ours = bd_rate(RATES, HIGHER, RATES, test_quality)
    assert ours.value == pytest.approx(expected, abs=1e-6)  # computed, as the package does, but flagged
    assert ours.overlap == pytest.approx(1 / 2.8)
    assert ours.flags == ("low overlap: the quality ranges share 36 % of their union (under 75 %)",)
    assert bd_quality(RATES, HIGHER, RATES, test_quality).flags == ()  # same bitrates: full overlap


def test_non_monotonic_curve_is_flagged_where_the_package_refuses():
    zigzag = np.array([2.3, 3.4, 3.1, 4.1])  # quality falls from 12 to 24 kbps
    with pytest.raises(ValueError, match="strictly increasing"):  # rate as a function of quality is no function
        bjontegaard.bd_rate(RATES, HIGHER, RATES, zigzag, method="pchip")
    ours = bd_rate(RATES, HIGHER, RATES, zigzag)
    assert not math.isnan(ours.value)
    assert ours.flags == ("non-monotonic: test's quality does not change one way with bitrate (quality 3.4 at 12 then "
                          "3.1 at 24)",)
    assert bd_quality(RATES, HIGHER, RATES, zigzag).flagged
    opposite = bd_rate(RATES, HIGHER, RATES, LOWER + 2.0)  # rises for one, falls for the other
    assert opposite.flags[0].startswith("non-monotonic: quality rises with bitrate for one of anchor and test")
