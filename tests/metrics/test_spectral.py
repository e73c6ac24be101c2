import numpy as np
import pytest
import torch
from audiotools import AudioSignal
from audiotools.metrics.spectral import MelSpectrogramLoss, MultiScaleSTFTLoss

from evalkit.metrics import Reference, get_metric, score_pair
from evalkit.metrics.spectral import (
    MEL_BANDS,
    MEL_WINDOWS,
    STFT_WINDOWS,
    magnitudes,
    mel_distance,
    mel_filters,
    stft_distance,
)

# DAC's configuration (conf/base.yml). Trap: mel_fmin/mel_fmax default to 2-entry lists that zip() with the
# scales, silently computing 2 scales unless given 7 entries.
DAC_MEL = dict(n_mels=list(MEL_BANDS), window_lengths=list(MEL_WINDOWS), mel_fmin=[0.0] * 7, mel_fmax=[None] * 7,
               pow=1.0, clamp_eps=1e-5, mag_weight=0.0)


def _pair(rng, channels, rate, seconds=0.5):
    n = int(rate * seconds)
    ref = (0.3 * rng.standard_normal((channels, n))).astype(np.float32)
    deg = (ref + 0.05 * rng.standard_normal((channels, n))).astype(np.float32)
    return ref, deg


def _signal(x, rate):
    return AudioSignal(torch.from_numpy(x)[None], rate)


@pytest.mark.parametrize("rate", [44100, 22050, 16000])
def test_mel_filters_equal_librosa(rate):
    import librosa

    for window, bands in zip(MEL_WINDOWS, MEL_BANDS, strict=True):
        expected = librosa.filters.mel(sr=rate, n_fft=window, n_mels=bands, fmin=0.0, fmax=None)
        np.testing.assert_allclose(mel_filters(rate, window, bands).numpy(), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.slow  # full-size mel and STFT references
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [44100, 22050])
def test_mel_distance_matches_audiotools_dac_config(rng, channels, rate):
    ref, deg = _pair(rng, channels, rate)
    expected = MelSpectrogramLoss(**DAC_MEL)(_signal(deg, rate), _signal(ref, rate)).item()
    assert mel_distance(ref, deg, rate) == pytest.approx(expected, rel=1e-4)


def test_stft_distance_matches_audiotools(rng):
    ref, deg = _pair(rng, 1, 44100)
    expected = MultiScaleSTFTLoss(window_lengths=[2048, 512])(_signal(deg, 44100), _signal(ref, 44100)).item()
    assert stft_distance(ref, deg) == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow  # full-size mel and STFT references
def test_identical_input_scores_zero_and_cache_reuse_is_exact(rng):
    ref, deg = _pair(rng, 1, 44100)
    reference = Reference(ref, 44100)
    metrics = [get_metric("mel_distance"), get_metric("stft_distance")]
    assert [r.value for r in score_pair(reference, ref, 44100, metrics)] == [0.0, 0.0]
    first = score_pair(reference, deg, 44100, metrics)  # reference spectra now cached
    fresh = score_pair(Reference(ref, 44100), deg, 44100, metrics)
    assert [r.value for r in first] == [r.value for r in fresh]
    assert first[0].value == pytest.approx(mel_distance(ref, deg, 44100), rel=1e-6)


@pytest.mark.parametrize("channels", [1, 2])
def test_magnitudes_are_torch_stft_abs_bit_for_bit(rng, channels):
    """The shared padding and hypot give exactly what each scale's own centred STFT and complex abs give, so
    stored values do not move."""
    x = torch.from_numpy(rng.standard_normal((channels, 12_345)).astype(np.float32))
    for windows in (MEL_WINDOWS, STFT_WINDOWS):
        for window, mag in zip(windows, magnitudes(x, windows), strict=True):
            expected = torch.stft(x, n_fft=window, hop_length=window // 4,
                                  window=torch.hann_window(window, periodic=True), center=True,
                                  pad_mode="reflect", return_complex=True).abs()
            assert mag.shape == expected.shape
            assert torch.equal(mag, expected), window
