"""Stimulus files that give nothing away: 24-bit FLAC with its own dither, equal byte sizes, one mtime.

What a participant's browser can see of a file without decoding it: its bytes (hash), its size
(``Content-Length``), its ``Last-Modified`` time and the ``ETag`` (Starlette's is a hash of mtime and size). So
every file is quantised to 24 bits with independent TPDF dither (±1 LSB, about −138 dBFS RMS, far below
audibility and below any DAC's noise floor): the hidden reference is never byte-identical to the open reference,
nor ABX's X to A or B. All files of one item are padded to the same byte size with a FLAC ``PADDING`` block (the
STREAMINFO frame-size fields, which describe the compressed frames, are set to 0, "unknown", as the FLAC format
allows), and all files get one modification time. Since trials travel as bundles (:mod:`evalkit.listening.web.bundle`)
the files are no longer served (test folders from before serve them from ``static/`` under ids no browser gets);
the dither still matters, as the bundles carry these samples.
"""

from __future__ import annotations

import io
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

FLAC_MAGIC = b"fLaC"
STREAMINFO, PADDING = 0, 1
PCM24_MAX = 2**23 - 1
FIXED_MTIME_S = 1_700_000_000  # every stimulus file's mtime (2023-11-14): the same for all, says nothing


def quantize_24bit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[channels, samples]`` float in [−1, 1] → 24-bit integers with TPDF dither (sum of two uniform ±½ LSB).

    >>> q = quantize_24bit(np.zeros((1, 4)), np.random.default_rng(0)); q.dtype, bool(np.all(np.abs(q) <= 1))
    (dtype('int32'), True)
    """
    dither = rng.random(x.shape) - rng.random(x.shape)
    q = np.round(np.clip(x, -1.0, 1.0) * 2**23 + dither)
    return np.clip(q, -(2**23), PCM24_MAX).astype(np.int32)


def encode_flac(x: np.ndarray, sample_rate: int, rng: np.random.Generator, bits: int = 24) -> bytes:
    """Dithered 24-bit (or 16-bit: the headphone check's noise) FLAC of ``[channels, samples]`` float audio
    (libsndfile's encoder, metadata reduced to STREAMINFO with unknown frame sizes)."""
    import soundfile as sf

    if bits not in (16, 24):
        raise ValueError(f"bits: expected 16 or 24, got {bits}")
    q = quantize_24bit(x, rng) if bits == 24 else (quantize_24bit(x / 256, rng) << 8)
    buffer = io.BytesIO()
    # libsndfile reads int32 data as full-scale 32-bit: shift the 24-bit values into the top bytes
    sf.write(buffer, (q.T << 8), int(sample_rate), format="FLAC", subtype=f"PCM_{bits}")
    return _streaminfo_only(buffer.getvalue())


def _blocks(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """FLAC metadata blocks as (type, body) and the offset of the first audio frame."""
    if data[:4] != FLAC_MAGIC:
        raise ValueError("not a FLAC stream")
    blocks, pos, last = [], 4, False
    while not last:
        header = data[pos]
        last, kind = bool(header & 0x80), header & 0x7F
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        blocks.append((kind, data[pos + 4:pos + 4 + length]))
        pos += 4 + length
    return blocks, pos


def _block(kind: int, body: bytes, last: bool) -> bytes:
    return bytes([(0x80 if last else 0) | kind]) + len(body).to_bytes(3, "big") + body


def _streaminfo_only(data: bytes) -> bytes:
    blocks, frames = _blocks(data)
    info = bytearray(dict(blocks)[STREAMINFO])
    info[4:10] = bytes(6)  # min/max frame size (24 bits each): 0 = unknown
    return FLAC_MAGIC + _block(STREAMINFO, bytes(info), last=True) + data[frames:]


def padded_to(data: bytes, size: int) -> bytes:
    """The same FLAC stream, exactly ``size`` bytes long, with a PADDING block after STREAMINFO.

    Raises:
        ValueError: ``size`` is smaller than the stream plus a 4-byte block header.
    """
    blocks, frames = _blocks(data)
    info = dict(blocks)[STREAMINFO]
    audio = data[frames:]
    fill = size - (4 + 4 + len(info) + 4 + len(audio))
    if fill < 0:
        raise ValueError(f"cannot pad a {len(data)}-byte FLAC stream to {size} bytes")
    return FLAC_MAGIC + _block(STREAMINFO, info, last=False) + _block(PADDING, bytes(fill), last=True) + audio


def equal_size(streams: Iterable[bytes]) -> list[bytes]:
    """Every stream padded to the size of the largest plus a block header (so that every file has a PADDING
    block and they all look alike)."""
    streams = list(streams)
    blocks = [_blocks(s) for s in streams]
    target = max(4 + 4 + len(dict(b)[STREAMINFO]) + 4 + len(s) - f for (b, f), s in zip(blocks, streams, strict=True))
    return [padded_to(s, target) for s in streams]


def set_fixed_mtime(paths: Iterable[Path]) -> None:
    """One modification (and access) time for all files: ``Last-Modified`` and the ETag say nothing."""
    ns = FIXED_MTIME_S * 10**9
    for path in paths:
        os.utime(path, ns=(ns, ns))


class StimulusWriter:
    """Collects the encoded files of each group (an item), then writes them padded to one size per group, with one
    mtime. ``file_format`` "wav": the former files (24-bit WAV, no dither, mtimes in writing order), kept only for
    before/after comparisons."""

    def __init__(self, folder: Path, file_format: str):
        self.folder = folder
        self.format = file_format
        self.rng = np.random.default_rng(secrets.randbits(128))  # dither: fresh for every file, not reproducible
        self.pending: dict[str, list[tuple[str, bytes]]] = defaultdict(list)

    def add(self, group: str, x: np.ndarray, rate: int, bits: int = 24) -> str:
        """Encode ``[channels, samples]`` audio under a new random id (returned); written by :meth:`flush`."""
        sid = secrets.token_hex(8)
        if self.format == "flac":
            data = encode_flac(x, rate, self.rng, bits)
        else:
            import soundfile as sf

            buffer = io.BytesIO()
            sf.write(buffer, np.clip(x, -1.0, 1.0).T, rate, format="WAV", subtype="PCM_24")
            data = buffer.getvalue()
        self.pending[group].append((sid, data))
        return sid

    def flush(self) -> None:
        """Write every collected file under ``folder`` (created)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        written = []
        for files in self.pending.values():
            ids = [sid for sid, _ in files]
            datas = [d for _, d in files]
            if self.format == "flac":
                datas = equal_size(datas)
            for sid, data in zip(ids, datas, strict=True):
                path = self.folder / f"{sid}.{self.format}"
                path.write_bytes(data)
                written.append(path)
        if self.format == "flac":
            set_fixed_mtime(written)
        else:  # the old behaviour, kept for before/after comparisons: files written one after another
            for k, path in enumerate(written):
                now = time.time_ns() + k * 1000
                os.utime(path, ns=(now, now))
        self.pending.clear()
