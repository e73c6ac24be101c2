"""Audio core: load/save, channel policy, resampling, loudness, alignment, clipping.

Pure functions over ``numpy`` arrays shaped ``[channels, samples]`` (float32, full scale ±1).
One resampler (soxr, "VHQ") is used everywhere in evalkit so that every number was made the same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RESAMPLER = f"soxr {soxr.__version__} VHQ"
DEFAULT_MAX_DELAY_S = 0.05
#: File extensions (lower case) libsndfile reads through soundfile (MP3 and Ogg Opus since libsndfile 1.1).
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf",
                        ".w64", ".rf64")
#: Extensions soundfile cannot read, decoded through PyAV (FFmpeg): AAC in MP4 (``.m4a``) or ADTS (``.aac``).
PYAV_EXTENSIONS = (".m4a", ".aac")
#: Every extension :func:`load` reads: a dataset folder's files by default (``dataset.glob`` unset).
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS + PYAV_EXTENSIONS


class AudioError(ValueError):
    """Bad audio input; the message names the file (or signal) and the reason."""

    def __init__(self, source: str | Path, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class ChannelPolicy(enum.StrEnum):
    """How to reconcile channel counts: average to mono, or keep/process each channel."""

    MONO = "mono"
    PER_CHANNEL = "per_channel"


@dataclass(frozen=True)
class Audio:
    """A signal with its rate. ``samples`` is ``[channels, samples]`` float32."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def num_samples(self) -> int:
        return self.samples.shape[1]

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate


def as_2d(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as ``[channels, samples]`` float32 (a 1-D signal becomes one channel)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2:
        raise ValueError(f"expected audio shaped [channels, samples], got shape {x.shape}")
    return x


def validate(x: np.ndarray, source: str | Path = "signal", *, allow_silent: bool = False) -> None:
    """Raise :class:`AudioError` for empty, non-finite or (unless allowed) all-zero audio."""
    if x.size == 0 or x.shape[-1] == 0:
        raise AudioError(source, "audio is empty (0 samples)")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise AudioError(source, f"audio contains {bad} NaN or infinite samples")
    if not allow_silent and not np.any(x):
        raise AudioError(source, "audio is silent (all samples are zero)")


def load(path: str | Path, *, channel_policy: ChannelPolicy | str = ChannelPolicy.PER_CHANNEL,
         allow_silent: bool = False) -> Audio:
    """Read an audio file (:data:`AUDIO_EXTENSIONS`) as float32 ``[channels, samples]``.

    Files with one of :data:`PYAV_EXTENSIONS` are decoded by FFmpeg through PyAV (:func:`read_with_pyav`), any
    other through libsndfile.

    Raises:
        AudioError: missing, unreadable, empty, non-finite or silent audio; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.suffix.lower() in PYAV_EXTENSIONS:
        samples, rate = read_with_pyav(path)
    else:
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            detail = getattr(exc, "error_string", None) or str(exc)  # libsndfile's reason, without the path
            raise AudioError(path, f"cannot decode audio ({detail})") from exc
        samples = np.ascontiguousarray(data.T)
    validate(samples, path, allow_silent=allow_silent)
    return Audio(apply_channel_policy(samples, channel_policy), int(rate))


def read_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of ``path`` with FFmpeg (PyAV): (float32 ``[channels, samples]``, rate).

    The decoder's priming is removed by the demuxer (the MP4 edit list); samples past the stream's stated
    duration (the last frame's padding) are cut.

    Raises:
        AudioError: no audio stream, or FFmpeg cannot decode it.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(path, "cannot decode audio (no audio stream)")
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="fltp")  # sample format only: rate and layout are kept
            chunks = [out.to_ndarray() for frame in container.decode(stream) for out in to_float.resample(frame)]
            chunks += [out.to_ndarray() for out in to_float.resample(None)]
            rate = stream.codec_context.sample_rate
            stated = None if stream.duration is None else round(stream.duration * stream.time_base * rate)
    except av.error.FFmpegError as exc:
        raise AudioError(path, f"cannot decode audio (FFmpeg: {exc})") from exc
    if not chunks:
        raise AudioError(path, "audio is empty (0 samples)")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    return np.ascontiguousarray(samples[:, :stated] if stated else samples), int(rate)


def pyav_header(path: Path) -> tuple[int, int, float]:
    """(sample rate, channels, seconds) of the first audio stream, from the container (PyAV), decoding nothing.

    Raises:
        AudioError: no audio stream, or FFmpeg cannot open the file.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(path, "cannot decode audio (no audio stream)")
            stream = container.streams.audio[0]
            rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
            if stream.duration is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = (container.duration or 0) / 1e6  # av.time_base: microseconds
    except av.error.FFmpegError as exc:
        raise AudioError(path, f"cannot decode audio (FFmpeg: {exc})") from exc
    return int(rate), int(channels), seconds


def save(path: str | Path, samples: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write ``[channels, samples]`` audio; the format follows the suffix (``.wav`` float32, ``.flac`` 24-bit)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = as_2d(samples)
    if subtype is None:
        subtype = "PCM_24" if path.suffix.lower() == ".flac" else "FLOAT"
    sf.write(str(path), x.T, int(sample_rate), subtype=subtype)
    return path


def apply_channel_policy(x: np.ndarray, policy: ChannelPolicy | str) -> np.ndarray:
    """``mono``: average channels into one; ``per_channel``: leave channels as they are."""
    x = as_2d(x)
    policy = ChannelPolicy(policy)
    if policy is ChannelPolicy.MONO and x.shape[0] > 1:
        return x.mean(axis=0, keepdims=True)
    return x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``[channels, samples]`` with soxr (very high quality, linear phase).

    Output length is ``round(n * sr_out / sr_in)``; identical rates return the input unchanged.
    """
    x = as_2d(x)
    if sr_in == sr_out:
        return x
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="VHQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, x.shape[0]).T)


# --- loudness (ITU-R BS.1770-4 through pyloudnorm) -----------------------------------------------

def loudness_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4, gated); ``-inf`` for signals below the gate.

    Raises:
        AudioError: signal shorter than one 400 ms gating block.
    """
    import pyloudnorm

    x = as_2d(x)
    if x.shape[1] < int(0.4 * sample_rate):
        raise AudioError("signal", f"too short for BS.1770 loudness ({x.shape[1] / sample_rate:.3f} s < 0.4 s)")
    meter = pyloudnorm.Meter(sample_rate)
    return float(meter.integrated_loudness(x.T.astype(np.float64)))


def normalize_loudness(x: np.ndarray, sample_rate: int, target_lufs: float = -23.0) -> tuple[np.ndarray, float]:
    """Scale ``x`` to ``target_lufs``; returns the scaled signal and the gain applied in dB."""
    current = loudness_lufs(x, sample_rate)
    if not np.isfinite(current):
        raise AudioError("signal", "loudness is below the BS.1770 absolute gate; cannot normalise")
    gain_db = target_lufs - current
    return (as_2d(x) * np.float32(10 ** (gain_db / 20))).astype(np.float32), float(gain_db)


# --- alignment ----------------------------------------------------------------------------------

MIN_DELAY_CONFIDENCE = 0.3  # peak |normalised cross-correlation| below this: no reliable delay
MIN_PEAK_RATIO = 1.1  # the peak must exceed every value more than PEAK_SEPARATION_S away by this factor
PEAK_SEPARATION_S = 0.001
GUARD_FACTOR = 3  # lags up to this many times max_delay_s are searched too, to see a peak beyond the window


@dataclass(frozen=True)
class DelayEstimate:
    """A cross-correlation delay estimate and how far it can be trusted.

    Attributes:
        samples: delay to compensate, > 0 when the degraded signal lags; 0 when the peak is not reliable.
        polarity: sign of the correlation at the peak (-1: the degraded signal is inverted).
        confidence: ``|normalised cross-correlation|`` at the peak, in [0, 1] (1: a scaled, shifted copy).
        peak_ratio: the peak over the largest value more than 1 ms away from it (1: no distinct peak).
        note: why the estimate was not used (``None`` when it is reliable).
    """

    samples: int
    polarity: int
    confidence: float
    peak_ratio: float
    note: str | None = None

    @property
    def reliable(self) -> bool:
        return self.note is None


@dataclass(frozen=True)
class Alignment:
    """What :func:`align` did: ``delay_samples`` > 0 means the degraded signal lags the reference."""

    delay_samples: int
    sample_rate: int
    length: int
    trimmed_reference: int
    trimmed_degraded: int

    @property
    def delay_ms(self) -> float:
        return 1000.0 * self.delay_samples / self.sample_rate


def estimate_delay(reference: np.ndarray, degraded: np.ndarray, sample_rate: int,
                   max_delay_s: float = DEFAULT_MAX_DELAY_S) -> DelayEstimate:
    """Lag that maximises the magnitude of the normalised cross-correlation of the mono mixes.

    ``r(τ) = Σ_n d[n + τ] x[n] / (‖x‖ ‖d‖)`` over ``|τ| ≤ max_delay_s``; the magnitude is used so that a
    polarity-inverted copy is found at its true lag (its sign is returned as ``polarity``). The estimate is
    reliable when ``|r|`` at the peak is at least 0.3, exceeds every value more than 1 ms away by 10 % (a
    periodic or unrelated signal has no distinct peak), does not lie on the edge of the search window, and no
    lag beyond the window (up to 3 × ``max_delay_s``) correlates better: a true delay just outside the window
    otherwise shows up as a spurious peak inside it, near the edge (a 55 ms delay "found" at 49 ms). Otherwise
    ``samples`` is 0 and ``note`` says why ("no reliable delay …").

    >>> x = np.random.default_rng(0).standard_normal(4000)
    >>> e = estimate_delay(x, -np.concatenate([np.zeros(30), x]), 8000)
    >>> (e.samples, e.polarity, round(e.confidence, 2), e.reliable)
    (30, -1, 1.0, True)
    """
    import scipy.fft

    r = as_2d(reference).mean(axis=0, dtype=np.float64)
    d = as_2d(degraded).mean(axis=0, dtype=np.float64)
    max_lag = int(round(max_delay_s * sample_rate))
    energy = float(np.sqrt(np.dot(r, r) * np.dot(d, d)))
    if energy == 0.0:
        return DelayEstimate(0, 1, 0.0, 1.0, "a signal is silent: delay not estimated")
    if max_lag == 0:
        return DelayEstimate(0, 1, float(abs(np.dot(r[: len(d)], d[: len(r)])) / energy), 1.0,
                             "delay search disabled (max_delay_s = 0); not shifted")
    nfft = scipy.fft.next_fast_len(len(r) + len(d) - 1, real=True)
    xc = scipy.fft.irfft(scipy.fft.rfft(d, nfft) * np.conj(scipy.fft.rfft(r, nfft)), nfft)
    all_lags = np.arange(-GUARD_FACTOR * max_lag, GUARD_FACTOR * max_lag + 1)
    all_lags = all_lags[(all_lags < len(d)) & (all_lags > -len(r))]
    inside = np.abs(all_lags) <= max_lag
    beyond = np.abs(xc[all_lags[~inside] % nfft]) / energy
    lags = all_lags[inside]
    values = xc[lags % nfft] / energy
    magnitude = np.abs(values)
    # ties (e.g. periodic signals) go to the smallest |lag|
    best = np.flatnonzero(magnitude == magnitude.max())
    i = int(best[np.argmin(np.abs(lags[best]))])
    lag, confidence = int(lags[i]), float(magnitude[i])
    polarity = -1 if values[i] < 0 else 1
    far = np.abs(lags - lag) > PEAK_SEPARATION_S * sample_rate
    ratio = float(confidence / magnitude[far].max()) if np.any(far) and magnitude[far].max() > 0 else np.inf
    window = f"±{1000 * max_delay_s:g} ms"
    note = None
    strongest_beyond = float(beyond.max()) if beyond.size else 0.0
    if strongest_beyond > confidence and strongest_beyond >= MIN_DELAY_CONFIDENCE:
        outside = int(all_lags[~inside][int(np.argmax(beyond))])
        note = (f"no reliable delay within {window}: the cross-correlation is stronger outside the window (|r| = "
                f"{strongest_beyond:.3f} at {1000 * outside / sample_rate:.1f} ms), the delay may be larger")
    elif confidence < MIN_DELAY_CONFIDENCE:
        note = f"no reliable delay within {window} (peak |r| = {confidence:.3f} < {MIN_DELAY_CONFIDENCE})"
    elif ratio < MIN_PEAK_RATIO:
        note = (f"no distinct delay within {window} (peak |r| = {confidence:.3f} at {lag} samples is only "
                f"{ratio:.3f}x the next peak)")
    elif abs(lag) == max_lag:
        note = f"no reliable delay: the peak lies on the edge of the {window} window (the delay may be larger)"
    if note is not None:
        note += "; not shifted"
    return DelayEstimate(0 if note else lag, polarity, confidence, ratio, note)


def align(reference: np.ndarray, degraded: np.ndarray, sample_rate: int,
          max_delay_s: float = DEFAULT_MAX_DELAY_S, delay: int | None = None
          ) -> tuple[np.ndarray, np.ndarray, Alignment]:
    """Compensate the delay of ``degraded`` and trim both signals to their common length.

    Args:
        delay: use this delay instead of estimating it (samples, sign as in :func:`estimate_delay`); an
            estimate that is not reliable shifts nothing.
    """
    ref, deg = as_2d(reference), as_2d(degraded)
    if delay is None:
        delay = estimate_delay(ref, deg, sample_rate, max_delay_s).samples
    if delay >= 0:
        deg_shifted, ref_shifted = deg[:, delay:], ref
    else:
        deg_shifted, ref_shifted = deg, ref[:, -delay:]
    length = min(ref_shifted.shape[1], deg_shifted.shape[1])
    info = Alignment(delay_samples=int(delay), sample_rate=sample_rate, length=length,
                     trimmed_reference=ref.shape[1] - length, trimmed_degraded=deg.shape[1] - length)
    return ref_shifted[:, :length], deg_shifted[:, :length], info


# --- clipping -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClippingReport:
    """Share of samples at or beyond ``threshold`` full scale, and the peak magnitude."""

    clipped_samples: int
    total_samples: int
    peak: float
    threshold: float

    @property
    def fraction(self) -> float:
        return self.clipped_samples / self.total_samples if self.total_samples else 0.0

    @property
    def clipped(self) -> bool:
        return self.clipped_samples > 0


def detect_clipping(x: np.ndarray, threshold: float = 0.999) -> ClippingReport:
    """Count samples with ``|x| >= threshold`` (full scale = 1.0)."""
    x = as_2d(x)
    mag = np.abs(x)
    return ClippingReport(int(np.count_nonzero(mag >= threshold)), int(x.size),
                          float(mag.max()) if x.size else 0.0, threshold)
