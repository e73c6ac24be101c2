"""The one preparation every metric gets: rates, channels, alignment; failures as NaN with reasons."""

import numpy as np
import pytest

from evalkit import audio
from evalkit.metrics import Reference, applicable_metrics, get_metric, get_metrics, score_pair
from evalkit.metrics.registry import UnknownMetric
from tests.conftest import tone


def test_mismatched_rates_resample_degraded_to_reference_rate():
    ref = tone(440, 44100, 0.5) + tone(3000, 44100, 0.5, 0.1)
    deg = audio.resample(ref, 44100, 16000)
    result = score_pair(Reference(ref, 44100), deg, 16000, [get_metric("si_sdr")])[0]
    p = result.preparation
    assert p.rate == 44100 and p.degraded_rate == 16000 and p.resampler.startswith("soxr")
    assert result.value > 40  # band-limited content survives the round trip


def test_delay_is_estimated_once_and_compensated(rng):
    ref = (0.2 * rng.standard_normal((1, 44100))).astype(np.float32)
    delayed = np.concatenate([np.zeros((1, 441), np.float32), ref], axis=1)  # 10 ms late
    results = score_pair(Reference(ref, 44100), delayed, 44100, get_metrics(["si_sdr", "stoi", "pesq_wb"]))
    si, stoi, pesq = (r.preparation for r in results)
    assert si.delay_samples == 441 and si.delay_ms == pytest.approx(10) and si.aligned_by == "evalkit"
    assert stoi.delay_samples == 100  # the same delay at STOI's 10 kHz
    assert results[0].value > 100 and si.trimmed_degraded == 441
    assert si.delay_confidence == pytest.approx(1.0, abs=1e-4) and si.delay_note is None and si.polarity == 1
    # PESQ aligns by itself: the whole signals at 16 kHz, nothing shifted or trimmed
    assert pesq.aligned_by == "metric" and pesq.delay_samples == 0 and pesq.trimmed_degraded == 0
    assert (pesq.reference_samples, pesq.degraded_samples) == (16000, 16160)


def test_degraded_is_resampled_once_per_rate(rng, monkeypatch):
    from evalkit.metrics import prepare

    calls = []
    real = prepare.audio_lib.resample

    def counting(x, sr_in, sr_out):
        calls.append((x.shape, sr_in, sr_out))
        return real(x, sr_in, sr_out)

    monkeypatch.setattr(prepare.audio_lib, "resample", counting)
    ref = (0.2 * rng.standard_normal((1, 44100))).astype(np.float32)
    names = ["si_sdr", "mel_distance_22k", "stoi", "estoi", "pesq_wb", "pesq_nb", "visqol_speech"]
    score_pair(Reference(ref, 44100), ref * 0.5, 44100, get_metrics(names))
    targets = [sr_out for _, sr_in, sr_out in calls if sr_in != sr_out]
    assert sorted(targets) == sorted([22050, 10000, 16000] * 2)  # reference and degraded, once per rate each


def test_mono_stereo_mismatch_downmixes_both(rng):
    ref = (0.2 * rng.standard_normal((2, 8000))).astype(np.float32)
    deg = ref.mean(axis=0, keepdims=True)
    result = score_pair(Reference(ref, 8000), deg, 8000, [get_metric("si_sdr")])[0]
    assert result.preparation.channels == "downmix (channel mismatch 2 vs 1)" and result.value > 100
    mono_metric = score_pair(Reference(ref, 16000), ref, 16000, [get_metric("stoi")])[0]
    assert mono_metric.preparation.channels == "downmix 2/2->1"


def test_nan_degraded_and_silent_reference_fail_every_metric(rng):
    ref = (0.2 * rng.standard_normal((1, 16000))).astype(np.float32)
    bad = ref.copy()
    bad[0, 5] = np.nan
    metrics = get_metrics(["si_sdr", "mel_distance_22k", "stoi"])
    for r in score_pair(Reference(ref, 16000), bad, 16000, metrics, source="deg.wav"):
        assert np.isnan(r.value) and r.reason == "deg.wav: audio contains 1 NaN or infinite samples"
    for r in score_pair(Reference(np.zeros_like(ref), 16000, "ref.wav"), ref, 16000, metrics):
        assert np.isnan(r.value) and "ref.wav: audio is silent" in r.reason


def test_registry_errors_and_applicability():
    with pytest.raises(UnknownMetric, match="unknown metric 'pesq'; valid: si_sdr, mel_distance"):
        get_metric("pesq")
    with pytest.raises(UnknownMetric, match="corpus metric"):
        get_metric("codebook_usage")
    names16 = {m.info.name for m in applicable_metrics(16000, 16000)}
    assert {"pesq_wb", "visqol_speech", "stoi", "si_sdr"} <= names16
    assert not {"visqol_audio", "mel_distance", "mel_distance_22k"} & names16
    assert "visqol_audio" in {m.info.name for m in applicable_metrics(44100, 44100)}


def test_a_pair_shorter_than_a_metrics_minimum_is_nan_with_the_reason(rng):
    # 10 samples used to score SI-SDR 140.8 dB (the optimal scale fits ten samples almost exactly)
    x = (0.1 * rng.standard_normal((1, 10))).astype(np.float32)
    (result,) = score_pair(Reference(x, 16000), x * 0.5 + 1e-4 * rng.standard_normal((1, 10)), 16000,
                           [get_metric("si_sdr")])
    assert np.isnan(result.value)
    assert result.reason == "too short for si_sdr: 0.001 s after alignment, need 0.100 s"
    long = (0.1 * rng.standard_normal((1, 1600))).astype(np.float32)  # exactly 0.1 s: scored
    (ok,) = score_pair(Reference(long, 16000), long, 16000, [get_metric("si_sdr")])
    assert ok.reason is None and ok.value > 100


def test_every_pair_metric_declares_a_real_minimum_duration():
    from evalkit.metrics import PAIR_METRICS

    for name, metric in PAIR_METRICS.items():
        assert metric.info.min_duration_s >= 0.02, name  # at least one analysis frame; nothing scores 0 samples


def test_a_reference_cache_gives_the_delays_computed_without_it(rng):
    ref = (0.2 * rng.standard_normal((2, 16000))).astype(np.float32)
    cache: dict = {}
    for lag, length in [(37, 16000), (-120, 15000), (0, 16500), (200, 16000)]:  # several FFT lengths: one entry each
        shifted = np.pad(np.roll(ref, lag, axis=1), ((0, 0), (0, max(0, length - ref.shape[1]))))[:, :length]
        deg = -0.5 * shifted + 0.01 * rng.standard_normal((2, length))
        assert audio.estimate_delay(ref, deg, 16000, reference_cache=cache) == audio.estimate_delay(ref, deg, 16000)
    assert sorted(k[1] for k in cache if isinstance(k, tuple)) == sorted(
        {audio_nfft(16000, n) for n in (16000, 15000, 16500)})


def audio_nfft(n_ref: int, n_deg: int) -> int:
    import scipy.fft

    return scipy.fft.next_fast_len(n_ref + n_deg - 1, real=True)


def test_the_pair_delay_estimation_is_charged_to_the_metrics_evalkit_aligns(rng, monkeypatch):
    import types

    from evalkit.metrics import prepare, score

    clock = [0.0]  # score's clock moves only while the delay is estimated: each metric's seconds are its share
    monkeypatch.setattr(score, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    real = prepare.pair_delay

    def timed_delay(*args, **kwargs):
        clock[0] += 1.0
        return real(*args, **kwargs)

    monkeypatch.setattr(score, "pair_delay", timed_delay)
    ref = (0.2 * rng.standard_normal((1, 16000))).astype(np.float32)
    metrics = get_metrics(["si_sdr", "mel_distance", "pesq_wb"])
    si, mel, pesq = score_pair(Reference(ref, 16000), ref.copy(), 16000, metrics)
    assert pesq.preparation.aligned_by == "metric" and pesq.seconds == 0.0  # aligns by itself: no share
    assert si.seconds == mel.seconds == 0.5  # the 1 s split between the two metrics evalkit aligns


def test_a_reference_is_validated_once_for_all_the_signals_scored_against_it(monkeypatch):
    from evalkit import audio as audio_lib
    from evalkit.metrics import get_metrics, score_pair

    rate = 16_000
    ref = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)[None]
    checked, real = [], audio_lib.validate

    def validate(x, source="signal", **kwargs):
        checked.append(source)
        return real(x, source, **kwargs)

    monkeypatch.setattr(audio_lib, "validate", validate)
    reference = Reference(ref, rate, "item.wav")
    for k in range(3):
        assert score_pair(reference, 0.5 * ref, rate, get_metrics(["si_sdr"]), source=f"codec{k}")[0].ok
    assert checked.count("item.wav") == 1 and [s for s in checked if s != "item.wav"] == ["codec0", "codec1",
                                                                                          "codec2"]
    bad = ref.copy()
    bad[0, 5] = np.nan
    broken = Reference(bad, rate, "bad.wav")
    for _ in range(2):  # a reference that fails stays failing
        [result] = score_pair(broken, ref, rate, get_metrics(["si_sdr"]))
        assert result.reason == "bad.wav: audio contains 1 NaN or infinite samples"
