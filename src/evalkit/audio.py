"""Audio core: load/save, channel policy, resampling, loudness, alignment, peak level, clipping.

Pure functions over ``numpy`` arrays shaped ``[channels, samples]`` (float32, full scale ±1).
One resampler (soxr, "VHQ") is used everywhere in evalkit so that every number was made the same way.
"""

from __future__ import annotations

import enum
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from evalkit.errors import UserError

RESAMPLER = f"soxr {soxr.__version__} VHQ"
DEFAULT_MAX_DELAY_S = 0.05
#: File extensions (lower case) libsndfile reads through soundfile (MP3 and Ogg Opus since libsndfile 1.1).
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf",
                        ".w64", ".rf64")
#: Extensions soundfile cannot read, decoded through PyAV (FFmpeg): AAC in MP4 (``.m4a``) or ADTS (``.aac``).
PYAV_EXTENSIONS = (".m4a", ".aac")
#: Every extension :func:`load` reads: a dataset folder's files by default (``dataset.glob`` unset).
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS + PYAV_EXTENSIONS


class AudioError(UserError, ValueError):
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


@dataclass(frozen=True)
class FileSignal:
    """A signal in an audio file, read by frame range: a long decoded signal scored segment by segment is never
    held whole (:func:`evalkit.metrics.score_pair`). ``source`` names it in messages."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    source: str = "signal"

    #: frames read at a time by :meth:`validate`
    BLOCK_FRAMES = 1 << 20

    @classmethod
    def open(cls, path: str | Path, source: str | None = None) -> FileSignal:
        """The file's rate, channels and length from its header (nothing decoded).

        Raises:
            AudioError: missing or unreadable.
        """
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(path, f"cannot decode audio ({getattr(exc, 'error_string', None) or exc})") from exc
        return cls(str(path), int(info.samplerate), int(info.channels), int(info.frames), source or str(path))

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.frames

    def read(self, start: int, end: int) -> np.ndarray:
        """Frames ``[start, end)`` (clipped to the file) as float32 ``[channels, frames]``."""
        start, end = max(0, start), min(self.frames, end)
        if end <= start:
            return np.zeros((self.channels, 0), np.float32)
        with sf.SoundFile(self.path) as f:
            f.seek(start)
            data = f.read(end - start, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T)

    def validate(self, *, allow_silent: bool = False) -> None:
        """:func:`validate` over the whole file, a block at a time."""
        silent, bad = True, 0
        for start in range(0, self.frames, self.BLOCK_FRAMES):
            block = self.read(start, start + self.BLOCK_FRAMES)
            bad += int(np.count_nonzero(~np.isfinite(block)))
            silent = silent and not np.any(block)
        _check(self.source, self.frames, bad, silent and not allow_silent)


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
        _check(source, 0, 0, False)
    low, high = float(np.min(x)), float(np.max(x))  # NaN and ±inf show in these: no whole-length temporary
    bad = 0 if np.isfinite(low) and np.isfinite(high) else int(np.count_nonzero(~np.isfinite(x)))
    _check(source, x.shape[-1], bad, not allow_silent and low == high == 0.0)


def _check(source: str | Path, samples: int, bad: int, silent: bool) -> None:
    """The one wording of :func:`validate`'s refusals (arrays and :class:`FileSignal` alike)."""
    if samples == 0:
        raise AudioError(source, "audio is empty (0 samples)")
    if bad:
        raise AudioError(source, f"audio contains {bad} NaN or infinite samples")
    if silent:
        raise AudioError(source, "audio is silent (all samples are zero)")


def load(path: str | Path, *, channel_policy: ChannelPolicy | str = ChannelPolicy.PER_CHANNEL,
         allow_silent: bool = False) -> Audio:
    """Read an audio file (:data:`AUDIO_EXTENSIONS`) as float32 ``[channels, samples]``.

    Files with one of :data:`PYAV_EXTENSIONS` are decoded by FFmpeg through PyAV (:func:`read_with_pyav`), small
    32-bit float and 16-bit PCM WAV files read with numpy (:func:`read_plain_wav`: libsndfile's values), any other
    through libsndfile.

    Raises:
        AudioError: missing, unreadable, empty, non-finite or silent audio; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.suffix.lower() in PYAV_EXTENSIONS:
        samples, rate = read_with_pyav(path)
    elif (plain := read_plain_wav(path)) is not None:
        samples, rate = plain
    else:
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            detail = getattr(exc, "error_string", None) or str(exc)  # libsndfile's reason, without the path
            raise AudioError(path, f"cannot decode audio ({detail})") from exc
        samples = np.ascontiguousarray(data.T)
    validate(samples, path, allow_silent=allow_silent)
    return Audio(apply_channel_policy(samples, channel_policy), int(rate))


#: WAV sample formats :func:`read_plain_wav` reads: (format tag, bits) → (stored dtype, scale to ±1 as libsndfile)
_PLAIN_WAV = {(3, 32): ("<f4", None), (1, 16): ("<i2", 1 / 32768)}
_EXTENSIBLE = 0xFFFE
_PLAIN_WAV_MAX_BYTES = 64 << 20  # larger files go through libsndfile (read whole here, they would be copied twice)


@dataclass(frozen=True)
class PlainWavLayout:
    """Where a plain WAV file's samples are (:func:`plain_wav_layout`): ``frames`` of ``channels`` stored as
    ``dtype`` from byte ``offset``, multiplied by ``scale`` (when not ``None``) to give libsndfile's values."""

    rate: int
    channels: int
    frames: int
    dtype: str
    scale: float | None
    offset: int


def plain_wav_layout(head: bytes, file_size: int) -> PlainWavLayout | None:
    """The layout of a 32-bit float or 16-bit PCM WAV file from its first bytes ``head`` (the whole file, or as
    much as holds its chunks up to the start of ``data``) and its size in bytes; ``None`` for any other file
    (another format, an odd or truncated layout, chunks beyond ``head``)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fmt, pos = None, 12
    while pos + 8 <= len(head):
        kind, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        body = pos + 8
        if kind == b"fmt " and size >= 16:
            if body + size > len(head):
                return None
            tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", head, body)
            if tag == _EXTENSIBLE and size >= 40:
                tag = struct.unpack_from("<H", head, body + 24)[0]  # the sub-format GUID's first two bytes
            fmt = (tag, channels, rate, block, bits)
        elif kind == b"data":
            if fmt is None or body + size != file_size and body + size + (size & 1) > file_size:
                return None  # no format yet, or truncated
            tag, channels, rate, block, bits = fmt
            stored = _PLAIN_WAV.get((tag, bits))
            if stored is None or channels < 1 or block != channels * bits // 8 or size % block or rate <= 0:
                return None
            return PlainWavLayout(int(rate), int(channels), size // block, stored[0], stored[1], body)
        pos = body + size + (size & 1)  # chunks are padded to an even size
    return None


def read_plain_wav(path: Path) -> tuple[np.ndarray, int] | None:
    """A small 32-bit float or 16-bit PCM WAV file read with numpy: float32 ``[channels, samples]`` and its rate,
    the values libsndfile gives (16-bit samples / 32768) at a tenth of its per-file cost (0.2 ms for one second);
    ``None`` for any other file (another format, an odd or truncated layout), which libsndfile then reads."""
    try:
        if path.stat().st_size > _PLAIN_WAV_MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    layout = plain_wav_layout(data, len(data))
    if layout is None:
        return None
    frames = np.frombuffer(data, dtype=layout.dtype, count=layout.frames * layout.channels,
                           offset=layout.offset).reshape(-1, layout.channels)
    samples = np.array(frames.T, dtype=np.float32, order="C")  # a writable copy, not a view of the bytes
    if layout.scale is not None:
        samples *= np.float32(layout.scale)
    return samples, layout.rate


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


def save_float_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """:func:`write_float_wav` into the file ``path`` (created or truncated; no suffix is added)."""
    with open(path, "wb") as fh:
        write_float_wav(fh, samples, sample_rate)


def write_float_wav(fh: BinaryIO, samples: np.ndarray, sample_rate: int) -> None:
    """Write ``[channels, samples]`` as a 32-bit float WAV (``WAVE_FORMAT_IEEE_FLOAT``, ``fact`` chunk) to an open
    binary file. The bytes depend only on the samples and the rate (no timestamped chunk), and the call costs a
    header plus one copy of the data, which matters for thousands of short files."""
    x = np.ascontiguousarray(as_2d(samples).T, dtype="<f4")  # interleaved frames
    channels, frames = x.shape[1], x.shape[0]
    data_bytes = x.nbytes
    if data_bytes + 50 > 0xFFFFFFFF:
        raise ValueError(f"{frames} frames x {channels} channels exceed the 4 GiB a WAV file can hold")
    block = 4 * channels
    header = b"".join([
        b"RIFF", struct.pack("<I", 50 + data_bytes), b"WAVE",
        b"fmt ", struct.pack("<IHHIIHHH", 18, 3, channels, int(sample_rate), int(sample_rate) * block, block, 32, 0),
        b"fact", struct.pack("<II", 4, frames),
        b"data", struct.pack("<I", data_bytes)])
    fh.write(header)
    fh.write(memoryview(x).cast("B"))


def apply_channel_policy(x: np.ndarray, policy: ChannelPolicy | str) -> np.ndarray:
    """``mono``: average channels into one; ``per_channel``: leave channels as they are."""
    x = as_2d(x)
    policy = ChannelPolicy(policy)
    if policy is ChannelPolicy.MONO and x.shape[0] > 1:
        return x.mean(axis=0, keepdims=True)
    return x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``[channels, samples]`` with soxr (very high quality, linear phase).

    Output length is ``n * sr_out / sr_in`` rounded to an integer (by soxr; a half may go either way);
    identical rates return the input unchanged.
    """
    x = as_2d(x)
    if sr_in == sr_out:
        return x
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="VHQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, x.shape[0]).T)


class StreamResampler:
    """:func:`resample` block by block (soxr's stream resampler), for signals too long to hold twice: the blocks'
    outputs, joined, are :func:`resample`'s output bit for bit, its length included. Identical rates return each
    block unchanged.

    >>> r = StreamResampler(8_000, 16_000, channels=1)
    >>> halves = np.split(np.sin(np.arange(800, dtype=np.float32) / 9)[None], 2, axis=1)
    >>> joined = np.concatenate([r(halves[0]), r(halves[1], last=True)], axis=1)
    >>> np.array_equal(joined, resample(np.concatenate(halves, axis=1), 8_000, 16_000))
    True
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int):
        self.channels = channels
        self._stream = None if sr_in == sr_out else soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32",
                                                                         quality="VHQ")
        self.seconds = 0.0  # spent resampling, for callers that time the work around it

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """The output ``block`` (``[channels, samples]``, the signal's next samples) completes; ``last``: the
        signal ends with it (the resampler's tail comes out; an empty block may end the signal)."""
        if self._stream is None:
            return block
        t0 = time.perf_counter()
        y = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=last)
        y = np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, self.channels).T)
        self.seconds += time.perf_counter() - t0
        return y

    def end(self) -> np.ndarray:
        """The resampler's tail: the signal ended with the last block given."""
        return self(np.zeros((self.channels, 0), np.float32), last=True)


def collect_blocks(blocks: Iterable[np.ndarray], channels: int, expected: int) -> np.ndarray:
    """``blocks`` joined into one array, allocated for ``expected`` samples (grown by a quarter when more come),
    so a long signal is not held twice, as its blocks and their concatenation."""
    out = np.empty((channels, expected), np.float32)
    filled = 0
    for block in blocks:
        if filled + block.shape[1] > out.shape[1]:
            room = max(block.shape[1], out.shape[1] // 4)
            out = np.concatenate([out[:, :filled], np.empty((channels, room), np.float32)], axis=1)
        out[:, filled: filled + block.shape[1]] = block
        filled += block.shape[1]
    return out[:, :filled]


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


# --- alignment ---------------------------------------------------------------------------------

MIN_DELAY_CONFIDENCE = 0.3  # peak |normalised cross-correlation| below this: no reliable delay
MIN_PEAK_RATIO = 1.1  # the peak must exceed every value more than PEAK_SEPARATION_S away by this factor
PEAK_SEPARATION_S = 0.001
GUARD_FACTOR = 3  # lags up to this many times the window are searched too, to see a peak beyond the window
DELAY_SEARCH_FRACTION = 0.1  # the search window grows to this share of the item's length ...
DELAY_SEARCH_CAP_S = 1.0  # ... but not beyond this (a larger max_delay_s still applies)
# An unreliable estimate with a pair that would score this much worse at zero lag than at its best lag (as the
# SNR |r|^2 / (1 - |r|^2) of a scaled copy, in dB) is misaligned: aligned metrics are NaN rather than wrong.
MAX_ZERO_LAG_LOSS_DB = 3.0


def delay_search_s(max_delay_s: float, duration_s: float) -> float:
    """The delay search window (±seconds) for an item of ``duration_s``: ``max_delay_s`` or 10 % of the item
    (at most 1 s), whichever is larger; 0 when ``max_delay_s`` is 0 (search disabled).

    >>> delay_search_s(0.05, 3.0), delay_search_s(0.05, 0.3), delay_search_s(0.05, 600.0), delay_search_s(2.0, 60.0)
    (0.3, 0.05, 1.0, 2.0)
    """
    if max_delay_s <= 0:
        return 0.0
    return max(max_delay_s, min(round(DELAY_SEARCH_FRACTION * duration_s, 3), DELAY_SEARCH_CAP_S))


def _snr_db(r: float) -> float:
    """``10 log10(r² / (1 − r²))``: the SNR of a scaled copy plus noise whose normalised correlation is ``r``."""
    r = min(max(abs(r), 1e-6), 1 - 1e-9)
    return 10 * np.log10(r * r / (1 - r * r))


@dataclass(frozen=True)
class DelayEstimate:
    """A cross-correlation delay estimate and how far it can be trusted.

    Attributes:
        samples: delay to compensate, > 0 when the degraded signal lags; 0 when the peak is not reliable.
        polarity: sign of the correlation at the peak (-1: the degraded signal is inverted).
        confidence: ``|normalised cross-correlation|`` at the peak, in [0, 1] (1: a scaled, shifted copy).
        peak_ratio: the peak over the largest value more than 1 ms away from it (1: no distinct peak).
        note: why the estimate was not used (``None`` when it is reliable).
        window_s: the widest window searched (±s; 0: search disabled or a signal silent).
        zero_lag_r, best_r, best_lag_s: ``|r|`` at lag 0, and the largest ``|r|`` over every lag with its lag
            in seconds (inside the window or not): what :attr:`misaligned` compares.
    """

    samples: int
    polarity: int
    confidence: float
    peak_ratio: float
    note: str | None = None
    window_s: float = 0.0
    zero_lag_r: float = 0.0
    best_r: float = 0.0
    best_lag_s: float = 0.0

    @property
    def reliable(self) -> bool:
        return self.note is None

    @property
    def misaligned(self) -> bool:
        """No reliable delay, yet some lag correlates clearly better than lag 0 (|r| ≥ 0.3 there, and a scaled
        copy at lag 0 would be more than 3 dB worse): the pair as given is not aligned, so a metric that needs
        it aligned cannot be computed on it. Identical signals, periodic ones whose peaks tie with lag 0, and
        pairs that correlate weakly at every lag (very low bitrates, anchors) are not misaligned."""
        if self.reliable or self.window_s == 0 or self.best_r < MIN_DELAY_CONFIDENCE:
            return False
        return _snr_db(self.best_r) - _snr_db(self.zero_lag_r) > MAX_ZERO_LAG_LOSS_DB

    def misalignment(self) -> str:
        """The reason a metric that needs the pair aligned is NaN (see :attr:`misaligned`)."""
        beyond = abs(self.best_lag_s) > self.window_s
        return (f"no reliable delay within ±{1000 * self.window_s:g} ms and the pair is misaligned (|r| = "
                f"{self.zero_lag_r:.3f} at zero lag, {self.best_r:.3f} at {1000 * self.best_lag_s:+.1f} ms"
                + (", beyond the window: raise max_delay_s" if beyond else "") + "): not computed unaligned")


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
                   max_delay_s: float = DEFAULT_MAX_DELAY_S, search_s: float | None = None,
                   reference_cache: dict | None = None) -> DelayEstimate:
    """Lag that maximises the magnitude of the normalised cross-correlation of the mono mixes.

    ``r(τ) = Σ_n d[n + τ] x[n] / (‖x‖ ‖d‖)``, from one FFT over every lag; the magnitude is used so that a
    polarity-inverted copy is found at its true lag (its sign is returned as ``polarity``). The lag is searched
    within ``|τ| ≤ max_delay_s`` first and, when no reliable peak is there, within ``|τ| ≤ search_s`` (default
    :func:`delay_search_s` of the reference's length: 10 % of it, at most 1 s). A peak is reliable when ``|r|``
    there is at least 0.3, exceeds every value more than 1 ms away by 10 % (a periodic or unrelated signal has no
    distinct peak), does not lie on the edge of the window, and no lag beyond the window (up to 3 × the widest
    window) correlates better: a true delay just outside a window otherwise shows up as a spurious peak inside
    it, near the edge (a 55 ms delay "found" at 49 ms). Otherwise ``samples`` is 0 and ``note`` says why ("no
    reliable delay …"); :attr:`DelayEstimate.misaligned` then says whether the pair is usable unshifted.

    >>> x = np.random.default_rng(0).standard_normal(4000)
    >>> e = estimate_delay(x, -np.concatenate([np.zeros(30), x]), 8000)
    >>> (e.samples, e.polarity, round(e.confidence, 2), e.reliable)
    (30, -1, 1.0, True)

    ``reference_cache``: a dict kept with the reference between calls (one reference against several degraded
    signals): its mono mix, energy and spectrum are computed once there.
    """
    import scipy.fft

    cache = {} if reference_cache is None else reference_cache
    if "mono" not in cache:
        cache["mono"] = as_2d(reference).mean(axis=0, dtype=np.float64)
        cache["energy"] = float(np.dot(cache["mono"], cache["mono"]))
    r = cache["mono"]
    d = as_2d(degraded).mean(axis=0, dtype=np.float64)
    if search_s is None:
        search_s = delay_search_s(max_delay_s, len(r) / sample_rate)
    longest_s = max(len(r), len(d)) / sample_rate  # no lag is longer (also bounds an infinite max_delay_s)
    windows = [min(w, longest_s) for w in [max_delay_s] + [search_s] * (search_s > max_delay_s)]
    energy = float(np.sqrt(cache["energy"] * np.dot(d, d)))
    if energy == 0.0:
        return DelayEstimate(0, 1, 0.0, 1.0, "a signal is silent: delay not estimated")
    if round(windows[-1] * sample_rate) == 0:
        return DelayEstimate(0, 1, float(abs(np.dot(r[: len(d)], d[: len(r)])) / energy), 1.0,
                             "delay search disabled (max_delay_s = 0); not shifted")
    nfft = scipy.fft.next_fast_len(len(r) + len(d) - 1, real=True)
    if ("spectrum", nfft) not in cache:
        cache["spectrum", nfft] = np.conj(scipy.fft.rfft(r, nfft))
    xc = scipy.fft.irfft(scipy.fft.rfft(d, nfft) * cache["spectrum", nfft], nfft) / energy
    best = int(np.argmax(np.abs(xc)))  # index i is lag i, or i - nfft for the negative lags at the end
    overall = dict(zero_lag_r=float(abs(xc[0])), best_r=float(abs(xc[best])),
                   best_lag_s=(best if best < len(d) else best - nfft) / sample_rate)
    guard = GUARD_FACTOR * round(windows[-1] * sample_rate)
    for window in windows:
        estimate = _search(xc, window, guard, len(r), len(d), sample_rate)
        if estimate.reliable:
            break
    return replace(estimate, window_s=float(windows[-1]), **overall)


def _search(xc: np.ndarray, window_s: float, guard: int, n_ref: int, n_deg: int, sample_rate: int) -> DelayEstimate:
    """The peak of the normalised cross-correlation ``xc`` within ±``window_s``, with the checks of
    :func:`estimate_delay` (``guard``: the farthest lag, in samples, looked at beyond the window)."""
    nfft = len(xc)
    max_lag = round(window_s * sample_rate)
    reach = max(guard, max_lag)
    all_lags = np.arange(-min(reach, n_ref - 1), min(reach, n_deg - 1) + 1)
    inside = np.abs(all_lags) <= max_lag
    beyond = np.abs(xc[all_lags[~inside] % nfft])
    lags = all_lags[inside]
    values = xc[lags % nfft]
    magnitude = np.abs(values)
    # ties (e.g. periodic signals) go to the smallest |lag|
    best = np.flatnonzero(magnitude == magnitude.max())
    i = int(best[np.argmin(np.abs(lags[best]))])
    lag, confidence = int(lags[i]), float(magnitude[i])
    polarity = -1 if values[i] < 0 else 1
    far = np.abs(lags - lag) > PEAK_SEPARATION_S * sample_rate
    ratio = float(confidence / magnitude[far].max()) if np.any(far) and magnitude[far].max() > 0 else np.inf
    window = f"±{1000 * window_s:g} ms"
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


# --- level ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Peak:
    """A signal's sample peak against full scale (±1.0).

    Attributes:
        dbfs: ``20 log10(max |x|)``: 0 at full scale, > 0 beyond it (float files can hold such samples; fixed-point
            codecs clip them); ``-inf`` for silence.
        over_full_scale: some sample has ``|x| > 1.0`` (exactly ±1.0 is full scale, not beyond it).
    """

    dbfs: float
    over_full_scale: bool


def peak(x: np.ndarray) -> Peak:
    """The sample peak of ``x`` in dBFS and whether it exceeds full scale.

    >>> p = peak(np.array([[0.5, -3.5]], np.float32))
    >>> round(p.dbfs, 2), p.over_full_scale, peak(np.array([[-1.0, 0.2]])).over_full_scale
    (10.88, True, False)
    """
    top = max(float(np.max(x)), -float(np.min(x))) if np.size(x) else 0.0  # no |x| copy of a long signal
    with np.errstate(divide="ignore"):
        return Peak(float(20 * np.log10(top)), top > 1.0)


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
