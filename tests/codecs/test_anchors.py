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


def test_anchor_imports_its_filter_library_when_loaded_not_while_timed():
    """``reconstruct`` times ``process`` after ``load``: the first unit's process_s must not carry scipy.signal's
    import (half a second against a millisecond's filtering)."""
    code = ("import sys\n"
            "from evalkit.codecs import build_codec\n"
            "anchor = build_codec('lowpass?cutoff_hz=3500', device='cpu')\n"
            "assert 'scipy.signal' not in sys.modules, 'imported before load'\n"
            "anchor.load()\n"
            "assert 'scipy.signal' in sys.modules, 'not imported by load'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
