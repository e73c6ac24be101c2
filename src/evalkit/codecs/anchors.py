"""Low-pass anchors of ITU-R BS.1534-3 (MUSHRA) as a transform family: ``lowpass?cutoff_hz=3500``.

BS.1534-3 asks for a 3.5 kHz anchor (and recommends a 7 kHz mid anchor) whose filter keeps the passband
ripple within ±0.1 dB and attenuates at least 25 dB at 4 kHz and 50 dB at 4.5 kHz (scaled by
``cutoff/3500`` for other cut-offs). We use a linear-phase Kaiser-window FIR (``scipy.signal.firwin``'s
design, written in numpy) with its passband edge at the cut-off, 60 dB stop-band attenuation from
``8/7 × cutoff`` on, applied with its group delay removed, so the anchor is time-aligned with the reference.
When ``8/7 × cutoff`` exceeds the Nyquist frequency the stop band starts at Nyquist; a cut-off at or above
Nyquist is an error. It runs at the input's rate and has no bitrate.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from evalkit._lazy import torch
from evalkit.audio import AudioError
from evalkit.codecs.base import ArrayTransform, ProcessContext
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param
from evalkit.versions import installed_version

STOPBAND_ATTENUATION_DB = 60.0


def _kaiser_beta(attenuation_db: float) -> float:
    """Kaiser's β for a stop-band attenuation in dB (Kaiser 1974, as in Oppenheim & Schafer, eq. 7.75)."""
    a = attenuation_db
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


@lru_cache(maxsize=32)
def design_lowpass(cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Odd-length linear-phase FIR taps: passband ≤ ``cutoff_hz``, stop band from ``8/7 · cutoff_hz``.

    A windowed ideal low-pass: Kaiser's length estimate and β for :data:`STOPBAND_ATTENUATION_DB` over the
    transition band, the ideal response cut at the band's middle, unit gain at 0 Hz (the design of
    ``scipy.signal.kaiserord`` + ``firwin``, here in numpy so that workers need not import ``scipy.signal``).
    """
    nyquist = sample_rate / 2
    stop_hz = min(cutoff_hz * 8 / 7, nyquist)
    width = (stop_hz - cutoff_hz) / nyquist  # as a fraction of Nyquist
    numtaps = math.ceil((STOPBAND_ATTENUATION_DB - 7.95) / (2.285 * np.pi * width) + 1) | 1  # odd: type-I filter
    edge = (cutoff_hz + stop_hz) / 2 / nyquist
    m = np.arange(numtaps) - (numtaps - 1) / 2
    taps = edge * np.sinc(edge * m) * np.kaiser(numtaps, _kaiser_beta(STOPBAND_ATTENUATION_DB))
    return taps / taps.sum()


BLOCK_SAMPLES = 1 << 20  # longer inputs are filtered block by block (bounded memory)


CACHED_SPECTRUM_FFT = 1 << 17  # the taps' spectra of transforms up to this size are kept (1 MiB each, at most 16)


def _spectrum(cutoff_hz: float, sample_rate: int, n_fft: int) -> np.ndarray:
    from scipy import fft as sp_fft

    return sp_fft.rfft(design_lowpass(cutoff_hz, sample_rate), n_fft)


_cached_spectrum = lru_cache(maxsize=16)(_spectrum)


def _taps_spectrum(cutoff_hz: float, sample_rate: int, n_fft: int) -> np.ndarray:
    """The taps' spectrum for an ``n_fft``-point transform; kept for short transforms (a test set of equal-length
    items reuses a few), computed each time for long ones (a long item's blocks: megabytes each)."""
    spectrum = _cached_spectrum if n_fft <= CACHED_SPECTRUM_FFT else _spectrum
    return spectrum(cutoff_hz, sample_rate, n_fft)


def _convolve_valid(x: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """``x`` (its last axis padded with the filter's reach on both sides) convolved with the taps, in float64,
    the outputs whose window lies inside ``x`` (``mode="valid"``): one FFT per row."""
    from scipy import fft as sp_fft  # light (numpy's FFT plans), unlike scipy.signal

    reach = len(design_lowpass(cutoff_hz, sample_rate)) - 1
    n = x.shape[-1]
    n_fft = sp_fft.next_fast_len(n, real=True)  # the wrapped-around outputs are the first `reach`: dropped
    spectrum = sp_fft.rfft(x.astype(np.float64, copy=False), n_fft, axis=-1)
    return sp_fft.irfft(spectrum * _taps_spectrum(cutoff_hz, sample_rate, n_fft), n_fft, axis=-1)[..., reach:n]


def lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Zero-delay FIR low-pass of ``[..., samples]``; output has the input's length and dtype (the samples
    before the start and after the end taken as zeros).

    Inputs longer than :data:`BLOCK_SAMPLES` are filtered in blocks of that many output samples, each from its
    input span plus the filter's reach on both sides (the same sums, in another rounding order).
    """
    cutoff_hz, sample_rate = float(cutoff_hz), int(sample_rate)
    taps = design_lowpass(cutoff_hz, sample_rate)
    delay = (len(taps) - 1) // 2
    n = x.shape[-1]
    out = np.empty_like(x)
    for start in range(0, n, BLOCK_SAMPLES):
        end = min(n, start + BLOCK_SAMPLES)
        lo, hi = start - delay, end + delay  # y[i] = Σ_k taps[k] x[i + delay - k], k in [0, 2·delay]
        span = x[..., max(0, lo):min(n, hi)]
        pad = [(0, 0)] * (x.ndim - 1) + [(max(0, -lo), max(0, hi - n))]
        out[..., start:end] = _convolve_valid(np.pad(span, pad), cutoff_hz, sample_rate)
    return out


class LowpassAnchor(ArrayTransform):
    """A BS.1534 low-pass anchor; works at the input rate, whose Nyquist frequency must exceed the cut-off."""

    def __init__(self, spec: CodecSpec, device: str | torch.device = "cpu"):
        super().__init__(spec)
        self.cutoff_hz = float(spec.params["cutoff_hz"])

    @property
    def sample_rate(self) -> None:
        return None

    @property
    def min_samples(self) -> int:
        return 1

    def library_identity(self) -> str:
        """scipy's version: its FFT computes the filtered output (another version may round it otherwise)."""
        return f"scipy={installed_version('scipy', missing='none')}"

    def load(self) -> LowpassAnchor:
        """Import the filter's FFT (``scipy.fft``) here, outside the timed processing: the first unit's
        ``process_s`` would otherwise carry the import."""
        import scipy.fft  # noqa: F401

        return self

    def process_array(self, x: np.ndarray, context: ProcessContext) -> np.ndarray:
        """Filter at the input's rate.

        Raises:
            AudioError: the cut-off is at or above the Nyquist frequency (nothing could be removed).
        """
        rate = context.sample_rate
        if self.cutoff_hz >= rate / 2:
            raise AudioError(str(self.spec), f"cut-off {self.cutoff_hz:g} Hz is at or above the Nyquist frequency "
                                             f"({rate / 2:g} Hz) of {rate} Hz audio")
        return lowpass(x, self.cutoff_hz, rate)


FAMILIES = (
    CodecFamily("lowpass", "ITU-R BS.1534-3 low-pass anchor (linear-phase FIR, delay removed); no bitrate",
                (Param("cutoff_hz", float, 3500.0, "pass-band edge in Hz (3500: low anchor, 7000: mid anchor)",
                       minimum=100.0, sweep=True),), LowpassAnchor),
)
