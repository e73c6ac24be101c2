"""The audio file of a dataset entry: the file itself when the entry is a whole file, else a file written once
into the run's item cache (``<run>/cache/items``) that holds exactly the entry's samples.

A cut (a Kaldi segment, a JSON-lines ``start``/``end``) keeps samples ``[round(start × rate), round(end ×
rate))`` of the decoded file; a Lhotse entry is what its ``load_audio()`` returns; both are written as float32 WAV
(:func:`evalkit.audio.save`), so a worker reads back the very samples. A Hugging Face row's audio bytes are
written as they are (the encoded file), read by evalkit's own loader. A cached file is named by the SHA-256 of
what makes it (source file hash, cut bounds, decoder versions); the item's content hash, part of every unit key,
is the SHA-256 of the file's bytes. Next to each, ``NAME.json`` records where it came from.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from evalkit import audio as audio_lib
from evalkit.audio import AUDIO_EXTENSIONS
from evalkit.hashing import file_sha256
from evalkit.runner.formats import DatasetError, Entry, FileEntry, HfEntry, LhotseEntry, lhotse_recordings
from evalkit.runner.layout import temporary_path
from evalkit.versions import installed_version

END_TOLERANCE_S = 0.01  # a cut may end this far past the recording (rounded bounds); it ends at the recording's end
SNIFFED_SUFFIX = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3", "AIFF": ".aiff",
                  "AU": ".au", "CAF": ".caf", "W64": ".w64", "RF64": ".rf64"}


class _LastDecoded:
    """The most recently decoded source file: consecutive cuts of one recording decode it once."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.clip: audio_lib.Audio | None = None

    def load(self, path: Path) -> audio_lib.Audio:
        if path != self.path:
            self.clip, self.path = audio_lib.load(path, allow_silent=True), path
        return self.clip


class ItemFiles:
    """Writes (once) and finds the audio file of each entry in ``cache``."""

    def __init__(self, cache: Path, field: str):
        self.cache = cache
        self.field = field
        self._decoded = _LastDecoded()
        self._decoders = (f"libsndfile={sf.__libsndfile_version__}", f"av={installed_version('av', missing='none')}")

    def file_of(self, entry: Entry) -> Path:
        """The audio file holding exactly ``entry``'s samples.

        Raises:
            DatasetError: the source cannot be decoded or the cut lies outside it; the line names the entry.
        """
        if isinstance(entry, FileEntry):
            return entry.path if entry.whole else self._cut(entry)
        if isinstance(entry, LhotseEntry):
            return self._lhotse(entry)
        if isinstance(entry, HfEntry):
            return self._hf(entry)
        raise TypeError(f"unknown entry {type(entry).__name__}")

    def _named(self, recipe: list) -> str:
        return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def _write(self, name: str, suffix: str, data: bytes, provenance: dict) -> Path:
        path = self.cache / f"{name}{suffix}"
        if not path.is_file():
            self.cache.mkdir(parents=True, exist_ok=True)
            tmp = temporary_path(path)
            tmp.write_bytes(data)
            os.replace(tmp, path)
            sidecar = path.with_suffix(".json")
            sidecar.write_text(json.dumps(provenance, indent=1, sort_keys=True, default=str), encoding="utf-8")
        return path

    def _write_samples(self, recipe: list, samples: np.ndarray, rate: int, provenance: dict) -> Path:
        buffer = io.BytesIO()
        sf.write(buffer, audio_lib.as_2d(samples).T, int(rate), format="WAV", subtype="FLOAT")
        return self._write(self._named(recipe), ".wav", buffer.getvalue(), provenance)

    def _cut(self, entry: FileEntry) -> Path:
        try:
            clip = self._decoded.load(entry.path)
        except audio_lib.AudioError as exc:
            raise DatasetError(f"dataset.{self.field}: {entry.where}: {exc}") from None
        rate, n = clip.sample_rate, clip.num_samples
        start = round((entry.start_s or 0.0) * rate)
        end = n if entry.end_s is None else round(entry.end_s * rate)
        if end > n and end - n <= round(END_TOLERANCE_S * rate):
            end = n
        if start >= n or end > n:
            raise DatasetError(f"dataset.{self.field}: {entry.where}: the cut [{entry.start_s}, {entry.end_s}] s "
                               f"lies outside {entry.path} ({n / rate:g} s)")
        recipe = ["cut", file_sha256(entry.path), start, end, *self._decoders]
        provenance = {"item_id": entry.item_id, "entry": entry.where, "source": str(entry.path),
                      "start_s": entry.start_s, "end_s": entry.end_s, "start_sample": start, "end_sample": end,
                      "sample_rate_hz": rate}
        return self._write_samples(recipe, clip.samples[:, start:end], rate, provenance)

    def _lhotse(self, entry: LhotseEntry) -> Path:
        cut = entry.cut
        sources = [file_sha256(Path(s.source)) if s.type == "file" else None
                   for rec in lhotse_recordings(cut) for s in rec.sources]
        recipe = ["lhotse", cut.to_dict(), sources, installed_version("lhotse", missing="none"), *self._decoders]
        name = self._named(recipe)
        if (self.cache / f"{name}.wav").is_file():
            return self.cache / f"{name}.wav"
        try:
            samples = cut.load_audio()
        except Exception as exc:  # noqa: BLE001 - lhotse raises many types; one line naming the entry
            raise DatasetError(f"dataset.{self.field}: {entry.where}: lhotse cannot load its audio "
                               f"({type(exc).__name__}: {exc})") from None
        provenance = {"item_id": entry.item_id, "entry": entry.where, "lhotse": cut.to_dict(),
                      "sample_rate_hz": cut.sampling_rate}
        return self._write_samples(recipe, samples, cut.sampling_rate, provenance)

    def _hf(self, entry: HfEntry) -> Path:
        value = entry.rows[entry.index][entry.column]
        data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (None, value)
        if data is None:
            if path and Path(path).is_file():
                return Path(path)
            raise DatasetError(f"dataset.audio_column: {entry.where}: no audio bytes and no readable file "
                               f"({path!r})")
        suffix = Path(path or "").suffix.lower()
        if suffix not in AUDIO_EXTENSIONS:
            suffix = _sniffed_suffix(data, entry.where)
        digest = hashlib.sha256(data).hexdigest()
        provenance = {"item_id": entry.item_id, "entry": entry.where, "column": entry.column, "original_path": path}
        return self._write(digest[:32], suffix, data, provenance)


def _recordings(cut) -> list:
    from evalkit.runner.formats import _lhotse_recordings

    return _lhotse_recordings(cut)


def _sniffed_suffix(data: bytes, where: str) -> str:
    try:
        kind = sf.info(io.BytesIO(data)).format
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        kind = None
    if kind not in SNIFFED_SUFFIX:
        raise DatasetError(f"dataset.audio_column: {where}: audio bytes in no format evalkit reads "
                           f"({' '.join(AUDIO_EXTENSIONS)})")
    return SNIFFED_SUFFIX[kind]
