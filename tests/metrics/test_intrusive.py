"""Library metrics against direct calls of the libraries on the same prepared inputs."""

import numpy as np
import pytest
from pesq import pesq
from pystoi import stoi

from evalkit import audio
from evalkit.metrics import Reference, applicable_metrics, get_metric, score_pair
from tests.conftest import DEMO


@pytest.fixture(scope="module")
def speech():
    clip = audio.load(DEMO / "speech_demo-congrats.flac")
    ref = clip.samples[:, : 3 * clip.sample_rate]
    noise = np.random.default_rng(0).standard_normal(ref.shape).astype(np.float32)
    return ref, (ref + 0.02 * noise).astype(np.float32), clip.sample_rate


def _one(name, ref, deg, rate):
    return score_pair(Reference(ref, rate), deg, rate, [get_metric(name)])[0]


@pytest.mark.parametrize("name,mode", [("pesq_wb", "wb"), ("pesq_nb", "nb")])
def test_pesq_equals_direct_call_at_16khz(speech, name, mode):
    ref, deg, sr = speech
    r16, d16 = audio.resample(ref, sr, 16000)[0], audio.resample(deg, sr, 16000)[0]
    result = _one(name, ref, deg, sr)
    assert result.value == pytest.approx(pesq(16000, r16.astype(float), d16.astype(float), mode), abs=1e-6)
    assert result.preparation.rate == 16000 and result.preparation.resampler.startswith("soxr")
    assert 1.0 < result.value < 4.7


def test_pesq_nb_runs_at_8khz_below_16khz(speech):
    ref, deg, sr = speech
    r8, d8 = audio.resample(ref, sr, 8000), audio.resample(deg, sr, 8000)
    result = _one("pesq_nb", r8, d8, 8000)
    assert result.preparation.rate == 8000 and result.preparation.resampler is None
    assert result.value == pytest.approx(pesq(8000, r8[0].astype(float), d8[0].astype(float), "nb"), abs=1e-6)
    r11 = audio.resample(ref, sr, 11025)  # 11.025 kHz reaches 8 kHz only
    assert _one("pesq_nb", r11, r11, 11025).preparation.rate == 8000
    assert "pesq_nb" in {m.info.name for m in applicable_metrics(8000)}
    assert "pesq_wb" not in {m.info.name for m in applicable_metrics(8000)}


@pytest.mark.parametrize("name,extended", [("stoi", False), ("estoi", True)])
def test_stoi_equals_direct_call_at_10khz(speech, name, extended):
    ref, deg, sr = speech
    r, d = audio.resample(ref, sr, 10000)[0], audio.resample(deg, sr, 10000)[0]
    result = _one(name, ref, deg, sr)
    assert result.value == pytest.approx(stoi(r.astype(float), d.astype(float), 10000, extended=extended), abs=1e-9)
    assert _one(name, ref, ref, sr).value == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_visqol_audio_identical_and_order(speech):
    from visqol import VisqolApi

    ref, deg, sr = speech
    x48 = audio.resample(ref, sr, 48000)
    same = score_pair(Reference(x48, 48000), x48, 48000, [get_metric("visqol_audio")])[0]
    assert same.value == pytest.approx(4.7321, abs=1e-4)
    d48 = audio.resample(deg, sr, 48000)
    ours = score_pair(Reference(x48, 48000), d48, 48000, [get_metric("visqol_audio")])[0].value
    api = VisqolApi()
    api.create(mode="audio")
    direct = api.measure_from_arrays(x48[0].astype(float), d48[0].astype(float), 48000).moslqo
    swapped = api.measure_from_arrays(d48[0].astype(float), x48[0].astype(float), 48000).moslqo
    assert ours == pytest.approx(direct, abs=1e-9) and ours != pytest.approx(swapped, abs=1e-6)


def test_visqol_speech_runs_at_16khz(speech):
    ref, deg, sr = speech
    result = _one("visqol_speech", ref, deg, sr)
    assert result.preparation.rate == 16000 and 1.0 <= result.value <= 5.0


@pytest.mark.parametrize("name", ["pesq_wb", "pesq_nb", "stoi", "estoi", "visqol_audio"])
def test_too_short_input_is_nan_with_reason(speech, name):
    ref, deg, sr = speech
    result = _one(name, ref[:, : int(0.3 * sr)], deg[:, : int(0.3 * sr)], sr)
    assert np.isnan(result.value) and "too short" in result.reason


def test_pesq_library_error_is_nan_with_reason(speech):
    ref, _, sr = speech
    result = _one("pesq_wb", ref, np.zeros_like(ref), sr)  # silent codec output: pesq fails internally
    assert np.isnan(result.value) and result.reason.startswith("pesq: ValueError")
    assert _one("mel_distance", ref, np.zeros_like(ref), sr).value > 5  # other metrics still score it
    si = _one("si_sdr", ref, np.zeros_like(ref), sr)
    assert np.isnan(si.value) and "silent" in si.reason


@pytest.mark.parametrize("name", ["pesq_wb", "stoi", "visqol_speech"])
def test_silent_reference_is_nan(speech, name):
    ref, deg, sr = speech
    result = score_pair(Reference(np.zeros_like(ref), sr), deg, sr, [get_metric(name)])[0]
    assert np.isnan(result.value) and "silent" in result.reason


def test_speech_quality_measures_skip_items_of_other_categories():
    speech_measures = {"pesq_wb", "pesq_nb", "stoi", "estoi", "visqol_speech"}
    names = {c: {m.info.name for m in applicable_metrics(44_100, category=c)} for c in (None, "", "speech", "music")}
    for category in (None, "", "speech"):  # unknown category: still measured, as before categories existed
        assert speech_measures <= names[category], category
    assert not speech_measures & names["music"]
    assert {"si_sdr", "mel_distance", "visqol_audio"} <= names["music"]


@pytest.mark.parametrize("mode", ["audio", "speech"])
def test_visqol_builds_the_reference_spectrogram_once_per_item(speech, monkeypatch, mode):
    """The item's variants share the reference's gammatone spectrogram; each value still equals the library's own
    call (to visqol-python's run-to-run jitter, ~1e-14)."""
    from visqol import VisqolApi
    from visqol.gammatone import GammatoneSpectrogramBuilder

    ref, _, rate = speech
    metric = get_metric(f"visqol_{mode}")
    metric_rate = metric.info.sample_rate
    noise = np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32)
    variants = [(ref + level * noise).astype(np.float32) for level in (0.01, 0.05)]
    reference_length = audio.resample(ref, rate, metric_rate).shape[1]
    built = []  # lengths of the signals whose spectrogram was built
    real_build = GammatoneSpectrogramBuilder.build

    def build(self, signal, window):
        built.append(len(signal.data))
        return real_build(self, signal, window)

    monkeypatch.setattr(GammatoneSpectrogramBuilder, "build", build)
    item = Reference(ref, rate)  # one reference object per item, as a run's task has
    values, builds = [], []
    for deg in variants:
        values.append(score_pair(item, deg, rate, [metric])[0].value)
        builds.append(len(built) - sum(builds))
    assert built.count(reference_length) == 1 + len(variants)  # the reference once, each degraded signal once
    # the reference's patches too (these variants align alike): the second variant builds only its own signals
    assert builds[1] <= builds[0] // 2
    api = VisqolApi()
    api.create(mode=mode)
    r = audio.resample(ref, rate, metric_rate)[0].astype(np.float64)
    for value, deg in zip(values, variants, strict=True):
        d = audio.resample(deg, rate, metric_rate)[0].astype(np.float64)
        assert value == pytest.approx(api.measure_from_arrays(r, d, metric_rate).moslqo, abs=1e-9)
