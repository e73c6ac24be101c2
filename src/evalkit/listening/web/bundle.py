"""One trial on the wire: every signal of the trial in one file, fetched by one request and split in the browser.

A bundle is a PCM WAV file (``WAVE_FORMAT_EXTENSIBLE``, 24-bit, no speaker mask) whose channels are the channels of
the trial's signals side by side, in the participant's presentation order (the open reference first, then 1…n or
A, B, X): channel ``c`` of signal ``k`` is channel ``k · channels + c``. Samples are interleaved frame by frame, so
no signal has a byte range of its own, and the 68-byte header holds only the channel count, the rate and the
length, the same for every trial of that shape. The network shows one URL (random per participant and trial), one
size and one set of headers per trial, and nothing per signal.

Uncompressed on purpose: the output size of a lossless coder is a fingerprint of each signal (the hidden reference
compresses like the open reference to within bytes, ABX's X like its twin), and padding to one size only moves the
fingerprint into the padding length. Bundles are written into the served folder under their final name atomically
(built in a private folder, then renamed), by a small background pool so that the next trial's bundle is ready
before it is asked for.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from evalkit.listening.prepare.stimulus_files import FIXED_MTIME_S, quantize_24bit

HEADER_BYTES = 68
SUFFIX = ".wav"  # audio/* is served as is: Streamlit's gzip layer leaves it alone, and so do proxies
NAME = re.compile(r"[0-9a-f]{32}\.wav")  # what bundle names look like (old test folders' stimuli have 16 hex digits)
PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_PCM
BUILD_DIR = ".bundles"  # next to the served folder: bundles being written
WORKERS = 2

log = logging.getLogger(__name__)
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pending: dict[Path, Future] = {}


def wav_header(channels: int, sample_rate: int, frames: int, bits: int = 24) -> bytes:
    """The 68-byte ``WAVE_FORMAT_EXTENSIBLE`` header of ``frames`` frames of ``channels`` channels.

    >>> h = wav_header(4, 16000, 10); len(h), h[:4], int.from_bytes(h[64:68], "little")  # data: 10 · 4 · 3 bytes
    (68, b'RIFF', 120)
    """
    if bits not in (16, 24):
        raise ValueError(f"bits: expected 16 or 24, got {bits}")
    block = channels * bits // 8
    data_bytes = frames * block
    fmt = (0xFFFE).to_bytes(2, "little") + channels.to_bytes(2, "little") + sample_rate.to_bytes(4, "little") \
        + (sample_rate * block).to_bytes(4, "little") + block.to_bytes(2, "little") + bits.to_bytes(2, "little") \
        + (22).to_bytes(2, "little") + bits.to_bytes(2, "little") + bytes(4) + PCM_GUID
    return (b"RIFF" + (HEADER_BYTES - 8 + data_bytes).to_bytes(4, "little") + b"WAVE"
            + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + data_bytes.to_bytes(4, "little"))


def bundle_bytes(parts: Sequence[np.ndarray], sample_rate: int, bits: int = 24) -> bytes:
    """One bundle: ``parts`` (integer ``[channels, samples]`` arrays of ``bits``-bit values, all of one shape) as
    the channel groups of one interleaved WAV file, in the given order.

    Raises:
        ValueError: no parts, or parts of different shapes.
    """
    if not parts or len({p.shape for p in parts}) != 1:
        raise ValueError(f"parts: expected arrays of one shape, got {[p.shape for p in parts]}")
    frames = np.concatenate(parts, axis=0).T  # [samples, all channels]: frame by frame
    channels = frames.shape[1]
    if bits == 24:
        body = np.ascontiguousarray(frames, dtype="<i4").view(np.uint8).reshape(-1, channels, 4)[:, :, :3]
    else:
        body = np.ascontiguousarray(frames, dtype="<i2")
    return wav_header(channels, sample_rate, frames.shape[0], bits) + body.tobytes()


def read_pcm24(path: str | Path) -> np.ndarray:
    """A stimulus file (FLAC or WAV) as 24-bit integers ``[channels, samples]``, the bits as stored."""
    import soundfile as sf

    x, _ = sf.read(str(path), dtype="int32", always_2d=True)  # libsndfile puts 24-bit values in the top bytes
    return (x >> 8).T


def quantized(x: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Float ``[channels, samples]`` audio as ``bits``-bit integers with TPDF dither."""
    return quantize_24bit(x, rng) if bits == 24 else quantize_24bit(x / 256, rng)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="evalkit-bundle")
    return _pool


def _write(path: Path, make: Callable[[], bytes]) -> Path:
    building = path.parent.parent / BUILD_DIR
    building.mkdir(exist_ok=True)
    tmp = building / f"{secrets.token_hex(16)}.part"
    try:
        tmp.write_bytes(make())
        os.utime(tmp, ns=(FIXED_MTIME_S * 10**9,) * 2)  # Last-Modified and the ETag: the same for every bundle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ensure(path: Path, make: Callable[[], bytes]) -> Future:
    """The bundle at ``path``: done at once if the file exists, else built by ``make`` in the background (one
    build per path at a time; ask for ``.result()`` to wait)."""
    with _lock:
        running = _pending.get(path)
        if running is not None:
            return running
        if path.is_file():
            done: Future = Future()
            done.set_result(path)
            return done
        future = _executor().submit(_write, path, make)
        _pending[path] = future

    def forget(done: Future) -> None:
        with _lock:
            _pending.pop(path, None)
        if done.exception() is not None:  # nobody may wait for a prefetched bundle: say it here
            log.warning("bundle %s: %s", path.name, done.exception())
    future.add_done_callback(forget)
    return future


def discard(path: Path) -> None:
    """Delete a bundle no longer needed (its trial is stored), once any build of it has finished."""
    with _lock:
        running = _pending.get(path)
    if running is not None:
        running.exception()  # waits; a failed build left nothing to delete
    path.unlink(missing_ok=True)


def clear(static_dir: Path) -> int:
    """Delete every bundle in ``static_dir`` and anything half-written next to it (at server start: bundles are
    rebuilt on demand). Returns the number of bundles deleted."""
    removed = 0
    if static_dir.is_dir():
        for path in static_dir.iterdir():
            if NAME.fullmatch(path.name) and path.is_file():
                path.unlink()
                removed += 1
    building = static_dir.parent / BUILD_DIR
    if building.is_dir():
        for path in building.glob("*.part"):
            path.unlink(missing_ok=True)
    return removed
