import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from evalkit.codecs import build_codec
from evalkit.codecs.anchors import design_lowpass, lowpass
from tests.conftest import tone


def response_db(taps, freqs, rate):
    _, h = signal.freqz(taps, worN=np.asarray(freqs, float), fs=rate)
    return 20 * np.log10(np.abs(h))


@pytest.mark.parametrize("rate", [32000, 44100, 48000])
@pytest.mark.parametrize("cutoff", [3500.0, 7000.0])
def test_bs1534_anchor_filter_mask(rate, cutoff):
    """BS.1534-3: ripple ≤ ±0.1 dB in the pass band, ≥ 25 dB at 8/7·fc and ≥ 50 dB from 9/7·fc on."""
    if cutoff * 9 / 7 >= rate / 2:
        pytest.skip("mask beyond Nyquist")
    taps = design_lowpass(cutoff, rate)
    passband = response_db(taps, np.linspace(0, cutoff, 400), rate)
    assert np.max(np.abs(passband)) <= 0.1
    assert response_db(taps, [cutoff * 8 / 7], rate)[0] <= -25
    stop = response_db(taps, np.linspace(cutoff * 9 / 7, rate / 2, 800), rate)
    assert np.max(stop) <= -50


def test_anchor_is_zero_delay_and_preserves_length():
    rate = 48000
    impulse = np.zeros((1, 4001), np.float32)
    impulse[0, 2000] = 1
    y = lowpass(impulse, 3500, rate)
    assert y.shape == impulse.shape and int(np.argmax(y[0])) == 2000
    low, high = tone(500, rate, 0.5), tone(6000, rate, 0.5)
    core = slice(2000, -2000)
    np.testing.assert_allclose(lowpass(low, 3500, rate)[0][core], low[0][core], atol=0.5 * 0.0116)
    assert np.max(np.abs(lowpass(high, 3500, rate)[0][core])) < 0.5 * 10 ** (-50 / 20)


def test_anchor_through_interface_runs_at_input_rate():
    anchor = build_codec("lowpass?cutoff_hz=7000")
    x = tone(440, 44100, 0.2) + tone(15000, 44100, 0.2)
    rec = anchor.reconstruct(x, 44100)
    assert anchor.bitrate_bps is None and rec.encoded is None
    assert rec.report.resampler is None and rec.audio.shape == x.shape


def test_anchor_filters_when_its_stop_band_reaches_nyquist_and_refuses_cutoffs_at_nyquist():
    from evalkit.audio import AudioError

    rate = 16000  # 7 kHz: the stop band (8/7 x 7 kHz = Nyquist) is cut at Nyquist, the tone above 7 kHz still goes
    x = tone(1000, rate, 0.5) + tone(7800, rate, 0.5)
    y = build_codec("lowpass?cutoff_hz=7000").reconstruct(x, rate).audio
    core = slice(2000, -2000)
    residual = y[0][core] - tone(1000, rate, 0.5)[0][core]
    assert np.max(np.abs(residual)) < 0.5 * 10 ** (-20 / 20)
    with pytest.raises(AudioError, match=r"cut-off 8000 Hz is at or above the Nyquist frequency \(8000 Hz\)"):
        build_codec("lowpass?cutoff_hz=8000").reconstruct(x, rate)


@pytest.mark.parametrize(("rate", "cutoff"), [(rate, cutoff) for rate in (8000, 16000, 22050, 44100, 48000)
                                               for cutoff in (1000.0, 3500.0, 7000.0) if cutoff < rate / 2])
def test_design_is_scipy_kaiserord_and_firwin(rate, cutoff):
    """The numpy design equals scipy.signal's: same length, same taps (the stop band cut at Nyquist too)."""
    nyquist = rate / 2
    stop = min(cutoff * 8 / 7, nyquist)
    numtaps, beta = signal.kaiserord(60.0, (stop - cutoff) / nyquist)
    expected = signal.firwin(numtaps | 1, (cutoff + stop) / 2, window=("kaiser", beta), fs=rate)
    taps = design_lowpass(cutoff, rate)
    assert len(taps) == len(expected) and len(taps) % 2 == 1
    np.testing.assert_allclose(taps, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("shape", [(1, 16000), (2, 4801), (3, 40), (1, 1)])
def test_lowpass_is_the_delay_compensated_full_convolution(shape):
    """Output sample i is Σ_k taps[k] x[i + delay - k] with zeros outside the input (scipy's convolution, cut by
    the group delay), inputs shorter than the filter included; float32 in, float32 out."""
    x = np.random.default_rng(shape[1]).standard_normal(shape).astype(np.float32)
    taps = design_lowpass(3500.0, 16000)
    delay = (len(taps) - 1) // 2
    expected = signal.oaconvolve(x.astype(np.float64), taps[None], mode="full", axes=-1)[..., delay: delay + shape[1]]
    y = lowpass(x, 3500.0, 16000)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)


def test_anchor_never_imports_scipy_signal_and_imports_its_fft_when_loaded():
    """``reconstruct`` times ``process`` after ``load``: the first unit's process_s must not carry the FFT's
    import; and a worker running only anchors never pays scipy.signal's (over half a second)."""
    code = ("import sys\n"
            "import numpy as np\n"
            "from evalkit.codecs import build_codec\n"
            "anchor = build_codec('lowpass?cutoff_hz=3500', device='cpu')\n"
            "assert 'scipy.fft' not in sys.modules, 'imported before load'\n"
            "anchor.load()\n"
            "assert 'scipy.fft' in sys.modules, 'not imported by load'\n"
            "anchor.reconstruct(np.zeros((1, 8000), np.float32) + 0.1, 16000)\n"
            "assert 'scipy.signal' not in sys.modules, 'scipy.signal imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
