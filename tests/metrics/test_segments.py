"""Long pairs scored in segments: exact where the definition allows, recorded and keyed where it does not."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evalkit.metrics import Reference, get_metric, get_metrics, score_pair
from evalkit.metrics.segments import (
    DEFAULT_SEGMENT_S,
    SEGMENT_ABOVE_S,
    Aggregation,
    is_segmented,
    segment_bounds,
)
from evalkit.metrics.sisdr import si_sdr
from evalkit.runner.plan import Item, result_key, scored_segment_s

RATE = 16_000


def _pair(seconds: float, delay: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    ref = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)[None]
    deg = np.concatenate([np.zeros((1, delay), np.float32), ref[:, : n - delay]], axis=1)
    return ref, (0.8 * deg + 0.02 * rng.standard_normal(n).astype(np.float32)).astype(np.float32)


def test_sisdr_from_segment_sums_equals_the_whole_signal_value():
    ref, deg = _pair(1.0)
    metric = get_metric("si_sdr")
    cuts = [0, 1234, 5000, 9999, ref.shape[1]]
    terms = sum(metric.segment_terms(ref[:, a:b], deg[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True))
    whole = float(si_sdr(ref.astype(np.float64), deg.astype(np.float64))[0])  # the independent definition
    assert metric.from_segment_terms(terms) == pytest.approx(whole, abs=1e-9)


def test_segmented_sisdr_equals_whole_scoring_and_records_the_segmentation():
    ref, deg = _pair(2.0, delay=24)
    whole = score_pair(Reference(ref, RATE), deg, RATE, [get_metric("si_sdr")], segment_s=None)[0]
    parts = score_pair(Reference(ref, RATE), deg, RATE, [get_metric("si_sdr")], segment_s=0.5, segment_above_s=0.5)[0]
    assert parts.value == pytest.approx(whole.value, abs=1e-9)
    prep = parts.preparation
    assert (prep.segment_s, prep.segments, prep.aggregation) == (0.5, 4, Aggregation.EXACT_SUMS)
    assert prep.delay_samples == whole.preparation.delay_samples == 24
    assert prep.length == whole.preparation.length
    assert whole.preparation.segment_s is None and whole.preparation.segments == 1


def test_multi_segment_item_gives_finite_duration_weighted_values():
    ref, deg = _pair(3.0, delay=8)
    metrics = get_metrics(["si_sdr", "mel_distance_22k", "stft_distance", "stoi"])
    results = score_pair(Reference(ref, RATE), deg, RATE, metrics, segment_s=1.0, segment_above_s=1.0)
    for r in results:
        assert r.ok and math.isfinite(r.value), r.reason
        assert r.preparation.segments == 3 and r.preparation.segment_s == 1.0
    rules = {r.metric: r.preparation.aggregation for r in results}
    assert rules == {"si_sdr": "exact-sums", "mel_distance_22k": "duration-mean", "stft_distance": "duration-mean",
                     "stoi": "duration-mean"}
    # a duration mean: the mean of the three segments' own values, each scored as a short pair shifted by the delay
    stoi = get_metric("stoi")
    shifted_ref, shifted_deg = ref[:, : ref.shape[1] - 8], deg[:, 8:]
    own = [score_pair(Reference(shifted_ref[:, a:b], RATE), shifted_deg[:, a:b], RATE, [stoi], segment_s=None,
                      max_delay_s=0)[0].value for a, b in segment_bounds(shifted_ref.shape[1], RATE, 1.0)]
    assert results[3].value == pytest.approx(np.mean(own), abs=1e-6)


def test_pairs_not_longer_than_a_segment_are_scored_whole_as_before():
    ref, deg = _pair(1.0, delay=5)
    metrics = get_metrics(["si_sdr", "stft_distance"])
    default = score_pair(Reference(ref, RATE), deg, RATE, metrics)
    whole = score_pair(Reference(ref, RATE), deg, RATE, metrics, segment_s=None)
    assert [r.value for r in default] == [r.value for r in whole]
    assert [r.preparation for r in default] == [r.preparation for r in whole]


def test_pairs_longer_than_30_s_are_scored_in_10_s_segments_and_30_s_pairs_whole():
    assert (SEGMENT_ABOVE_S, DEFAULT_SEGMENT_S) == (30.0, 10.0)
    metric = [get_metric("si_sdr")]
    ref, deg = _pair(30.0, delay=3)
    assert score_pair(Reference(ref, RATE), deg, RATE, metric)[0].preparation.segments == 1
    ref, deg = _pair(30.5, delay=3)
    prep = score_pair(Reference(ref, RATE), deg, RATE, metric)[0].preparation
    assert (prep.segment_s, prep.segments) == (10.0, 4)  # ceil(30.5 / 10) equal segments of 7.6 s


@pytest.mark.parametrize("length", [1, 7, 16_000, 16_001, 47_999, 160_000])
def test_segments_cover_the_pair_and_stay_within_the_segment_length(length):
    bounds = segment_bounds(length, RATE, 1.0)
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(b[1] == c[0] for b, c in zip(bounds[:-1], bounds[1:], strict=True))
    assert all(0 < end - start <= RATE for start, end in bounds)
    assert is_segmented(length, RATE, 1.0) == (len(bounds) > 1)


def test_segmentation_is_part_of_the_result_key_of_long_items_only():
    long = Item("a.wav", Path("a.wav"), "h", sample_rate=RATE, seconds=SEGMENT_ABOVE_S + 1)
    short = Item("b.wav", Path("b.wav"), "h", sample_rate=RATE, seconds=SEGMENT_ABOVE_S)
    assert scored_segment_s(long, {}) == DEFAULT_SEGMENT_S
    assert scored_segment_s(short, {}) is None
    assert scored_segment_s(long, {"segment_seconds": 10.0}) is None  # cut to 10 s first
    metric = get_metric("si_sdr")
    assert result_key("u", metric, {}, None, None) == result_key("u", metric, {})
    assert result_key("u", metric, {}, None, DEFAULT_SEGMENT_S) != result_key("u", metric, {})
    assert result_key("u", metric, {}, None, DEFAULT_SEGMENT_S) != result_key("u", metric, {}, None, 30.0)


def test_stored_preparation_of_a_whole_pair_keeps_its_former_fields():
    from evalkit.runner.work import _preparation_json

    ref, deg = _pair(0.5)
    whole = score_pair(Reference(ref, RATE), deg, RATE, [get_metric("si_sdr")])[0]
    assert "segment_s" not in json.loads(_preparation_json(whole.preparation))
    ref, deg = _pair(1.0)
    parts = score_pair(Reference(ref, RATE), deg, RATE, [get_metric("si_sdr")], segment_s=0.4, segment_above_s=0.4)[0]
    stored = json.loads(_preparation_json(parts.preparation))
    assert (stored["segment_s"], stored["segments"], stored["aggregation"]) == (0.4, 3, "exact-sums")


@pytest.mark.parametrize("delay", [0, 37, -21])
def test_a_degraded_file_scored_a_segment_at_a_time_equals_the_array_scored(tmp_path, delay):
    """A long decoded signal is scored from its file, read one segment at a time: the same values and records
    as the array in memory (delay either way: the degraded file late, or early)."""
    from evalkit.audio import FileSignal, save_float_wav

    ref, deg = _pair(3.0, delay=max(delay, 0), seed=2)
    if delay < 0:
        deg = np.concatenate([deg[:, -delay:], np.zeros((1, -delay), np.float32)], axis=1)
    save_float_wav(tmp_path / "deg.wav", deg, RATE)
    signal = FileSignal.open(tmp_path / "deg.wav", source="codec")
    assert signal.shape == deg.shape and signal.sample_rate == RATE
    metrics = get_metrics(["si_sdr", "mel_distance_22k", "stoi"])
    kwargs = dict(segment_s=1.0, segment_above_s=1.0)
    from_array = score_pair(Reference(ref, RATE), deg, RATE, metrics, source="codec", **kwargs)
    from_file = score_pair(Reference(ref, RATE), signal, RATE, metrics, **kwargs)
    assert [(r.value, r.preparation) for r in from_file] == [(r.value, r.preparation) for r in from_array]
    assert from_file[0].preparation.segments == 3 and from_file[0].preparation.delay_samples == delay


def test_a_degraded_file_with_a_nan_fails_every_metric_with_the_reason(tmp_path):
    from evalkit.audio import FileSignal, save_float_wav

    ref, deg = _pair(3.0)
    deg[0, 20_000] = np.nan
    save_float_wav(tmp_path / "deg.wav", deg, RATE)
    results = score_pair(Reference(ref, RATE), FileSignal.open(tmp_path / "deg.wav", source="codec"), RATE,
                         get_metrics(["si_sdr", "stoi"]), segment_s=1.0, segment_above_s=1.0)
    assert [r.reason for r in results] == ["codec: audio contains 1 NaN or infinite samples"] * 2
