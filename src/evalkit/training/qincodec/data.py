"""Training audio for QinCodec: a folder of audio files, resampled to the model rate, split by file.

Each channel of a file is one mono signal (the codec codes channels separately). The split into training and
validation files is a deterministic function of each file's relative path, so resumed runs see the same split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evalkit import audio as audio_lib

EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3")
SILENCE_RMS = 10 ** (-60 / 20)


@dataclass(frozen=True)
class Corpus:
    """Mono signals at the model rate: ``train`` and ``val`` lists of float32 arrays, plus what was read."""

    train: list[np.ndarray]
    val: list[np.ndarray]
    sample_rate: int
    files: tuple[str, ...]
    skipped: tuple[str, ...]

    @property
    def train_seconds(self) -> float:
        return sum(len(x) for x in self.train) / self.sample_rate

    @property
    def val_seconds(self) -> float:
        return sum(len(x) for x in self.val) / self.sample_rate


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def is_validation(relative: str, fraction: float) -> bool:
    digest = hashlib.sha256(relative.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def load_corpus(folder: Path, sample_rate: int, val_fraction: float, min_seconds: float) -> Corpus:
    """Read every audio file under ``folder``; unreadable or too-short files are skipped and listed.

    Raises:
        ValueError: no usable audio, or nothing left for training or validation.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"training data folder {folder} does not exist")
    train, val, used, skipped = [], [], [], []
    for path in audio_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            clip = audio_lib.load(path)
        except audio_lib.AudioError as exc:
            skipped.append(f"{rel}: {exc}")
            continue
        x = audio_lib.resample(clip.samples, clip.sample_rate, sample_rate).astype(np.float32)
        if x.shape[1] < min_seconds * sample_rate:
            skipped.append(f"{rel}: shorter than {min_seconds} s")
            continue
        (val if is_validation(rel, val_fraction) else train).extend(np.ascontiguousarray(c) for c in x)
        used.append(rel)
    if not train or not val:
        raise ValueError(f"{folder}: need audio for both training and validation; found {len(used)} usable "
                         f"file(s) ({len(skipped)} skipped)")
    return Corpus(train, val, sample_rate, tuple(used), tuple(skipped))


class SegmentSampler:
    """Random fixed-length mono segments (silent ones redrawn), drawn with a seeded generator."""

    def __init__(self, signals: list[np.ndarray], length: int, seed: int):
        self.signals = [s for s in signals if len(s) >= length]
        if not self.signals:
            raise ValueError(f"no training signal is at least {length} samples long")
        weights = np.array([len(s) - length + 1 for s in self.signals], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.length = length
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def batch(self, size: int) -> torch.Tensor:
        out = np.empty((size, 1, self.length), dtype=np.float32)
        for i in range(size):
            for _ in range(20):
                s = self.signals[self.rng.choice(len(self.signals), p=self.weights)]
                start = self.rng.integers(0, len(s) - self.length + 1)
                seg = s[start: start + self.length]
                if np.sqrt(np.mean(seg.astype(np.float64) ** 2)) > SILENCE_RMS:
                    break
            out[i, 0] = seg
        return torch.from_numpy(out)


def fixed_segments(signals: list[np.ndarray], length: int, count: int, seed: int) -> torch.Tensor:
    """A fixed validation batch ``[count, 1, length]`` (the same every time for the same inputs)."""
    return SegmentSampler(signals, length, seed).batch(count)
