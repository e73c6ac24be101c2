"""Decoded folders: audio decoded by another tool, scored like the output of an evalkit codec.

A run config entry ``{decoded: {folder: PATH, label: "mycodec 6 kbps", bitrate_kbps: 6.0}}`` becomes the
pseudo-variant ``decoded?bitrate_kbps=6&folder=PATH&label=mycodec 6 kbps&length_tolerance_s=0.1`` (its spec
string is its identity in the store and the exports; its label is what people read). For each dataset item
``sub/x.wav`` the decoded file is ``FOLDER/sub/x.wav`` or, when absent, the one file ``FOLDER/sub/x.*`` with another
audio extension. Its SHA-256 (and that of its codes file) is part of the unit key, so a re-decoded file is scored
again and an unchanged one never is.

Like any codec output, the decoded audio is resampled to the item's rate (the one resampler), its channels are
matched to the item's (a stereo output of a mono item is averaged, a mono output is accepted for a mono item or
under ``channel_policy: mono``), and its length is restored to the item's (trailing samples cut or zeros padded,
both recorded); the metrics then align it in time as usual. A file whose length differs from the item's by more
than ``length_tolerance_s`` is not the item's decoding (or its header's rate is wrong): the unit fails with that
reason, as it does for a missing file ("no decoded file for ITEM in FOLDER") or channels that cannot be matched.

Optional ``codes: PATH`` holds one ``.npy`` integer array ``[codebooks, frames]`` per item (``sub/x.npy``) with
entries in ``[0, cardinality)``; they give the codebook-usage tables (perplexity, entropy-coding bound) of the
variant. Their frame rate is taken as frames / item duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from evalkit import audio as audio_lib
from evalkit.audio import AudioError, ChannelPolicy
from evalkit.codecs.records import DECODED_FAMILY, DECODED_WEIGHTS
from evalkit.codecs.spec import CodecSpec, split_spec
from evalkit.hashing import file_sha256

DECODED = DECODED_FAMILY
WEIGHTS_LABEL = DECODED_WEIGHTS
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff")
DEFAULT_LENGTH_TOLERANCE_S = 0.1


class DecodedError(AudioError):
    """A decoded file (or codes file) that is missing or does not fit its item; the unit fails with it."""

    def __init__(self, message: str):
        self.source, self.reason = "", message
        ValueError.__init__(self, message)


@dataclass(frozen=True)
class DecodedSource:
    """One decoded-folder entry of a run config (absolute paths).

    Attributes:
        label: the display label of the variant (exports keep the spec string too).
        bitrate_kbps: the bitrate the other tool coded at (kbit/s), ``None`` when it has none.
        codes: folder of per-item code arrays, with ``cardinality`` the entries per codebook.
        family: the rate–quality curve the variant is a point of (default: its label).
    """

    folder: Path
    label: str
    bitrate_kbps: float | None = None
    codes: Path | None = None
    cardinality: int | None = None
    family: str | None = None
    length_tolerance_s: float = DEFAULT_LENGTH_TOLERANCE_S

    def spec(self) -> CodecSpec:
        """The canonical spec of this entry (paths absolute; unset fields left out)."""
        params: dict[str, Any] = {"folder": str(self.folder), "label": self.label,
                                  "length_tolerance_s": float(self.length_tolerance_s)}
        optional = {"bitrate_kbps": None if self.bitrate_kbps is None else float(self.bitrate_kbps),
                    "codes": None if self.codes is None else str(self.codes), "cardinality": self.cardinality,
                    "family": self.family}
        params.update({k: v for k, v in optional.items() if v is not None})
        return CodecSpec(DECODED, params)

    @classmethod
    def from_spec(cls, spec: str | CodecSpec) -> DecodedSource:
        """Read an entry back from its spec (string or parsed).

        >>> s = DecodedSource(Path("/d"), "mine 6 kbps", 6.0)
        >>> str(s.spec())
        'decoded?bitrate_kbps=6&folder=/d&label=mine 6 kbps&length_tolerance_s=0.1'
        >>> DecodedSource.from_spec(str(s.spec())) == s
        True
        """
        raw = dict(split_spec(spec)[1]) if isinstance(spec, str) else {k: str(v) for k, v in spec.params.items()}
        return cls(Path(raw["folder"]), raw["label"],
                   float(raw["bitrate_kbps"]) if "bitrate_kbps" in raw else None,
                   Path(raw["codes"]) if "codes" in raw else None,
                   int(raw["cardinality"]) if "cardinality" in raw else None, raw.get("family"),
                   float(raw.get("length_tolerance_s", DEFAULT_LENGTH_TOLERANCE_S)))

    def find(self, item_id: str) -> Path | None:
        """The decoded file of ``item_id``: the same relative path, else the one file of that stem with another
        audio extension; ``None`` when there is none.

        Raises:
            DecodedError: several files of that stem (which one is meant is not known).
        """
        return _match(self.folder, item_id, AUDIO_SUFFIXES, "decoded file")

    def find_codes(self, item_id: str) -> Path | None:
        """The codes file ``<stem>.npy`` of ``item_id`` (``None`` without a codes folder or file)."""
        if self.codes is None:
            return None
        path = self.codes / _relative(item_id).with_suffix(".npy")
        return path if path.is_file() else None

    def key_parts(self, item_id: str) -> list[str]:
        """What of this entry's files is hashed into the unit key of ``item_id``: the decoded file's and the
        codes file's SHA-256 (``missing`` / ``ambiguous`` when there is no single file)."""
        try:
            decoded = self.find(item_id)
        except DecodedError:
            return ["ambiguous"]
        parts = [file_sha256(decoded) if decoded is not None else "missing"]
        if self.codes is not None:
            codes = self.find_codes(item_id)
            parts.append(file_sha256(codes) if codes is not None else "missing")
        return parts


def is_decoded_spec(spec: str | CodecSpec) -> bool:
    """Whether ``spec`` is a decoded-folder pseudo-variant."""
    family = spec.family if isinstance(spec, CodecSpec) else spec.partition("?")[0].strip()
    return family == DECODED


def _relative(item_id: str) -> PurePosixPath:
    path = PurePosixPath(item_id)
    return PurePosixPath(path.name) if path.is_absolute() else path  # a manifest entry outside its folder


def _match(folder: Path, item_id: str, suffixes: tuple[str, ...], what: str) -> Path | None:
    rel = _relative(item_id)
    exact = folder / rel
    if exact.is_file():
        return exact
    parent = exact.parent
    if not parent.is_dir():
        return None
    found = sorted(p for p in parent.glob(f"{_glob_escape(rel.stem)}.*")
                   if p.is_file() and p.stem == rel.stem and p.suffix.lower() in suffixes)
    if len(found) > 1:
        raise DecodedError(f"{len(found)} {what}s for {item_id} in {folder} ({', '.join(p.name for p in found)}): "
                           f"keep one")
    return found[0] if found else None


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


@dataclass(frozen=True)
class DecodedReport:
    """What was done to one decoded file to match its item (stored as the unit's ``reconstruction``)."""

    decoded_file: str
    decoded_rate: int
    decoded_channels: int
    decoded_samples: int
    input_rate: int
    input_channels: int
    input_samples: int
    resampler: str | None
    channel_handling: str
    trimmed_samples: int
    padded_samples: int
    output_samples: int
    codes_file: str | None = None


@dataclass(frozen=True)
class DecodedUnit:
    """A decoded item ready to score: audio ``[channels, samples]`` at the item's rate and (segment) length."""

    audio: np.ndarray
    report: DecodedReport
    codes: np.ndarray | None = None  # [1, codebooks, frames]
    frame_rate: float | None = None
    num_codebooks: int | None = None


def _match_channels(y: np.ndarray, want: int, policy: ChannelPolicy, path: Path) -> tuple[np.ndarray, str]:
    have = y.shape[0]
    if have == want:
        return y, "as-is"
    if have == 1 and policy is ChannelPolicy.MONO:
        return y, f"mono output of a {want}-channel item (channel_policy mono)"
    if want == 1:
        return y.mean(axis=0, keepdims=True), f"{have} channels averaged to 1"
    raise DecodedError(f"{path}: has {have} channel(s), the item {want}; a decoded file keeps the item's "
                       f"channels (or is mono under channel_policy: mono)")


def read_decoded(source: DecodedSource, item_id: str, reference: np.ndarray, rate: int, item_samples: int,
                 channel_policy: ChannelPolicy | str = ChannelPolicy.PER_CHANNEL) -> DecodedUnit:
    """The decoded audio of ``item_id`` matched to its reference (``[channels, samples]`` at ``rate``, possibly a
    segment of an item of ``item_samples`` samples), with its codes when the entry has a codes folder.

    Raises:
        DecodedError: no decoded (or codes) file, channels that cannot be matched, a length more than
            ``length_tolerance_s`` away from the item's, or bad codes; the message names the file.
        AudioError: an unreadable, empty or non-finite decoded file.
    """
    path = source.find(item_id)
    if path is None:
        raise DecodedError(f"no decoded file for {item_id} in {source.folder}")
    clip = audio_lib.load(path, allow_silent=True)  # a silent decoding is a result, scored as such
    y, handling = _match_channels(clip.samples, reference.shape[0], ChannelPolicy(channel_policy), path)
    resampler = None
    if clip.sample_rate != rate:
        y = audio_lib.resample(y, clip.sample_rate, rate)
        resampler = audio_lib.RESAMPLER
    decoded_s, item_s = clip.samples.shape[1] / clip.sample_rate, item_samples / rate
    if abs(decoded_s - item_s) > source.length_tolerance_s:
        raise DecodedError(f"{path}: {decoded_s:.3f} s at {clip.sample_rate} Hz, but {item_id} is {item_s:.3f} s "
                           f"at {rate} Hz: lengths differ by {abs(decoded_s - item_s):.3f} s, more than "
                           f"length_tolerance_s={source.length_tolerance_s:g}")
    n = reference.shape[1]
    trimmed, padded = max(0, y.shape[1] - n), max(0, n - y.shape[1])
    y = np.pad(y[:, :n], ((0, 0), (0, padded))).astype(np.float32)
    codes_path = None
    codes = frame_rate = num_codebooks = None
    if source.codes is not None:
        codes_path = source.find_codes(item_id)
        if codes_path is None:
            raise DecodedError(f"no codes file for {item_id} in {source.codes}")
        full = _read_codes(codes_path, source.cardinality or 0)
        frame_rate = full.shape[1] / item_s
        frames = min(full.shape[1], math.ceil(full.shape[1] * n / item_samples))  # the segment's frames
        dtype = np.int16 if (source.cardinality or 0) <= np.iinfo(np.int16).max + 1 else np.int32
        codes, num_codebooks = full[None, :, :frames].astype(dtype), int(full.shape[0])
    report = DecodedReport(str(path), clip.sample_rate, int(clip.samples.shape[0]), int(clip.samples.shape[1]),
                           rate, int(reference.shape[0]), n, resampler, handling, trimmed, padded, n,
                           None if codes_path is None else str(codes_path))
    return DecodedUnit(np.ascontiguousarray(y), report, codes, frame_rate, num_codebooks)


def _read_codes(path: Path, cardinality: int) -> np.ndarray:
    try:
        codes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DecodedError(f"{path}: cannot read codes ({exc})") from None
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer) or codes.shape[1] == 0:
        raise DecodedError(f"{path}: expected a non-empty integer array [codebooks, frames], got {codes.dtype} "
                           f"{list(codes.shape)}")
    if codes.min() < 0 or codes.max() >= cardinality:
        raise DecodedError(f"{path}: codes outside [0, {cardinality}) (min {codes.min()}, max {codes.max()}); "
                           f"check cardinality")
    return codes.astype(np.int64)
