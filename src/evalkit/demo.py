"""Quick end-to-end demo: every demo item through every codec family, one table.

Families with pretrained weights on this machine use them; the others run the official architecture with
``weights=random`` and say so in every row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evalkit import audio as audio_lib
from evalkit.codecs import FAMILIES, build_codec
from evalkit.codecs.base import Codec
from evalkit.codecs.spec import CodecSpec
from evalkit.codecs.weights import get_entry
from evalkit.errors import UserError


@dataclass(frozen=True)
class DemoRow:
    item: str
    spec: str
    weights: str
    bitrate_kbps: float | None
    input_samples: int
    restored_samples: int
    seconds: float
    error: str | None = None


def demo_specs() -> list[CodecSpec | tuple[str, str]]:
    """One variant per family at its default setting; ``weights=random`` where weights are missing. A family
    whose default cannot be built here (e.g. its checkpoint lacks a part it needs) is ``(family name, why)``."""
    specs: list[CodecSpec | tuple[str, str]] = []
    for family in FAMILIES.values():
        try:
            spec = family.resolve({})
            if "weights" in spec.params:
                weights_name = build_codec(spec, device="cpu").arch.weights_name
                found = get_entry(weights_name).find()
                spec = family.resolve({**spec.params, "weights": "pretrained" if found else "random"})
        except UserError as exc:
            specs.append((family.name, str(exc)))
            continue
        specs.append(spec)
    return specs


def run_demo(data_dir: str | Path, max_seconds: float = 2.0, device: str = "auto") -> Iterator[DemoRow]:
    """Yield one row per (item, codec); bad items give a row with ``error`` and the demo continues."""
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"{data_dir}: folder not found")
    files = sorted(p for p in Path(data_dir).iterdir() if p.suffix.lower() in {".flac", ".wav"})
    if not files:
        raise FileNotFoundError(f"{data_dir}: no .flac or .wav files")
    clips: dict[str, tuple[np.ndarray, int] | str] = {}  # item name -> (trimmed samples, rate) or the reason it failed
    for path in files:
        try:
            clip = audio_lib.load(path)
            clips[path.name] = (clip.samples[:, : int(max_seconds * clip.sample_rate)], clip.sample_rate)
        except audio_lib.AudioError as exc:
            clips[path.name] = exc.reason
    codecs = []
    for spec in demo_specs():
        try:
            codecs.append(build_codec(spec, device) if isinstance(spec, CodecSpec) else spec)
        except UserError as exc:
            codecs.append((spec.family, str(exc)))
    for codec in tqdm(codecs, desc="codecs", unit="codec"):
        if isinstance(codec, tuple):  # the family cannot run here: one row per item says why
            for name in clips:
                yield DemoRow(name, codec[0], "-", None, 0, 0, 0.0, f"unavailable: {codec[1]}")
            continue
        shown = codec.spec.short(FAMILIES[codec.spec.family].defaults)
        for name, clip in clips.items():
            if isinstance(clip, str):
                yield DemoRow(name, shown, codec.weights_label, None, 0, 0, 0.0, clip)
                continue
            samples, rate = clip
            try:
                t0 = time.perf_counter()
                rec = codec.reconstruct(samples, rate, source=name)
                yield DemoRow(name, shown, codec.weights_label,
                              codec.bitrate_bps / 1000 if isinstance(codec, Codec) else None,
                              samples.shape[1], rec.audio.shape[1], time.perf_counter() - t0)
            except audio_lib.AudioError as exc:
                yield DemoRow(name, shown, codec.weights_label, None, 0, 0, 0.0, exc.reason)


def format_rows(rows: list[DemoRow]) -> str:
    header = f"{'item':<28} {'codec':<34} {'kbps':>7} {'in':>7} {'out':>7} {'time s':>7}  weights"
    lines = [header, "-" * len(header)]
    for r in rows:
        kbps = f"{r.bitrate_kbps:.2f}" if r.bitrate_kbps is not None else "-"
        if r.error:
            lines.append(f"{r.item:<28} {r.spec:<34} FAILED: {r.error}")
            continue
        lines.append(f"{r.item:<28} {r.spec:<34} {kbps:>7} {r.input_samples:>7} {r.restored_samples:>7} "
                     f"{r.seconds:>7.2f}  {r.weights}")
    return "\n".join(lines)
