"""Delays beyond ±max_delay_s: found within a window that grows with the item, or NaN with the reason."""

import json
import math

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from evalkit import audio
from evalkit.cli import main
from evalkit.metrics import Reference, get_metrics, score_pair

RATE = 16_000
DELAYS_MS = (0, 20, 49, 60, 100, 150, 200)


def speech_like(seconds: float = 3.0, seed: int = 7) -> np.ndarray:
    """Band-passed noise in 4 Hz "syllables" plus a rising chirp, peak 0.5: ``[1, samples]`` at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    b, a = scipy.signal.butter(4, [200, 3000], btype="band", fs=RATE)
    voiced = scipy.signal.lfilter(b, a, rng.standard_normal(t.size)) * np.sin(2 * np.pi * 2 * t) ** 2
    x = voiced / np.abs(voiced).max() + 0.3 * scipy.signal.chirp(t, 300, seconds, 2000)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)[None]


def coded(x: np.ndarray, snr_db: float = 20.0, seed: int = 8) -> np.ndarray:
    """``x`` plus white noise at ``snr_db``: a codec output with a known SI-SDR."""
    noise = np.random.default_rng(seed).standard_normal(x.shape) * x.std() * 10 ** (-snr_db / 20)
    return (x + noise).astype(np.float32)


def delayed(x: np.ndarray, ms: float) -> np.ndarray:
    """``x`` ``ms`` late, cut to its own length (as a tool that keeps the length writes it)."""
    n = round(ms * RATE / 1000)
    return np.concatenate([np.zeros((1, n), np.float32), x], axis=1)[:, : x.shape[1]]


def si_sdr_db(s: np.ndarray, y: np.ndarray) -> float:
    """Zero-mean SI-SDR by its definition (Le Roux et al. 2019), independent of evalkit's."""
    s, y = s.ravel() - s.mean(), y.ravel() - y.mean()
    target = (y @ s) / (s @ s) * s
    return float(10 * np.log10((target @ target) / ((y - target) @ (y - target))))


@pytest.mark.parametrize("ms", DELAYS_MS)
def test_a_delay_up_to_200ms_on_a_3s_item_gives_the_undelayed_si_sdr(ms):
    x = speech_like()
    y = coded(x)
    expected = si_sdr_db(x, y)  # the undelayed pair
    result = score_pair(Reference(x, RATE), delayed(y, ms), RATE, get_metrics(["si_sdr"]))[0]
    assert result.reason is None, result.reason  # never a NaN here: the window (±300 ms) holds the delay
    assert result.value == pytest.approx(expected, abs=0.3)  # the shift costs the common part only its tail
    prep = result.preparation
    assert prep.delay_samples == round(ms * RATE / 1000) and prep.delay_search_s == pytest.approx(0.3)
    assert prep.delay_note is None


def test_a_delay_beyond_the_window_is_nan_with_the_reason_for_every_metric_evalkit_aligns():
    x = speech_like()
    y = delayed(coded(x), 400)  # beyond the ±300 ms window of a 3 s item
    results = {r.metric: r for r in score_pair(Reference(x, RATE), y, RATE,
                                               get_metrics(["si_sdr", "stoi", "mel_distance_22k", "pesq_wb"]))}
    for name in ("si_sdr", "stoi", "mel_distance_22k"):
        r = results[name]
        assert math.isnan(r.value), (name, r.value)
        assert r.reason.startswith("no reliable delay within ±300 ms and the pair is misaligned"), r.reason
        assert "+400.0 ms, beyond the window: raise max_delay_s" in r.reason
    pesq = results["pesq_wb"]  # aligns the pair itself: given both whole signals, not NaN for the delay
    assert pesq.preparation.aligned_by == "metric" and "delay" not in (pesq.reason or "")
    wider = score_pair(Reference(x, RATE), y, RATE, get_metrics(["si_sdr"]), max_delay_s=0.5)[0]
    assert wider.value == pytest.approx(si_sdr_db(x, coded(x)), abs=0.5)
    assert wider.preparation.delay_samples == round(0.4 * RATE)


def test_identical_periodic_weak_and_silent_pairs_are_still_scored():
    # No distinct peak (a tone), no correlation at any lag (unrelated noise, like a very low bitrate), a silent
    # output: none is "misaligned", so each keeps a value as before.
    tone = (0.5 * np.sin(2 * np.pi * 250 * np.arange(3 * RATE) / RATE)).astype(np.float32)[None]
    same = score_pair(Reference(tone, RATE), tone.copy(), RATE, get_metrics(["si_sdr"]))[0]
    assert same.reason is None and same.value > 60 and same.preparation.delay_note  # not distinct, yet scored
    x = speech_like()
    noise = (0.1 * np.random.default_rng(3).standard_normal(x.shape)).astype(np.float32)
    unrelated = score_pair(Reference(x, RATE), noise, RATE, get_metrics(["si_sdr"]))[0]
    assert unrelated.reason is None and unrelated.value == pytest.approx(si_sdr_db(x, noise), abs=1e-3)
    silent = score_pair(Reference(x, RATE), np.zeros_like(x), RATE, get_metrics(["si_sdr"]))[0]
    assert "delay" not in silent.reason and "silent" in silent.preparation.delay_note  # SI-SDR's own reason
    slightly_late = score_pair(Reference(tone, RATE), delayed(tone, 4), RATE, get_metrics(["si_sdr"]))[0]
    # a tone 4 ms late (one period) is the same tone: no delay is reliable, but lag 0 fits as well as any
    assert slightly_late.reason is None and slightly_late.value > 20
    quarter = score_pair(Reference(tone, RATE), delayed(tone, 1), RATE, get_metrics(["si_sdr"]))[0]
    assert math.isnan(quarter.value) and quarter.reason.startswith("no reliable delay")  # 90° out: misaligned


def test_evalkit_score_finds_the_delay_or_says_why_it_is_nan(tmp_path, capsys):
    x = speech_like()
    sf.write(tmp_path / "ref.wav", x.T, RATE, subtype="FLOAT")
    sf.write(tmp_path / "late.wav", delayed(coded(x), 150).T, RATE, subtype="FLOAT")
    sf.write(tmp_path / "later.wav", delayed(coded(x), 400).T, RATE, subtype="FLOAT")
    base = ["score", str(tmp_path / "ref.wav"), "--metric", "si_sdr", "--json"]
    assert main([base[0], base[1], str(tmp_path / "late.wav"), *base[2:]]) == 0
    assert json.loads(capsys.readouterr().out)["si_sdr"] == pytest.approx(si_sdr_db(x, coded(x)), abs=0.3)
    assert main([base[0], base[1], str(tmp_path / "later.wav"), *base[2:]]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"si_sdr": None}
    assert "si_sdr: NaN (no reliable delay within ±300 ms and the pair is misaligned" in out.err
    assert main([base[0], base[1], str(tmp_path / "later.wav"), *base[2:], "--max-delay-s", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["si_sdr"] == pytest.approx(si_sdr_db(x, coded(x)), abs=0.5)
    assert main([base[0], base[1], str(tmp_path / "late.wav"), "--max-delay-s", "-1"]) == 2
    assert "--max-delay-s: expected a number >= 0, got -1" in capsys.readouterr().err


def test_the_search_window_grows_with_the_item_up_to_a_cap():
    assert audio.delay_search_s(0.05, 3.0) == pytest.approx(0.3)
    assert audio.delay_search_s(0.05, 0.2) == 0.05  # max_delay_s is the floor
    assert audio.delay_search_s(0.05, 600.0) == audio.DELAY_SEARCH_CAP_S == 1.0
    assert audio.delay_search_s(2.0, 600.0) == 2.0  # a larger max_delay_s still applies
    assert audio.delay_search_s(0.0, 3.0) == 0.0  # 0 disables the search


def test_max_delay_s_zero_scores_the_pair_as_given():
    # The search disabled on purpose: nothing shifted, nothing NaN (the record says so).
    x = speech_like()
    r = score_pair(Reference(x, RATE), delayed(coded(x), 100), RATE, get_metrics(["si_sdr"]), max_delay_s=0)[0]
    assert r.reason is None and r.value < 0 and "delay search disabled" in r.preparation.delay_note
