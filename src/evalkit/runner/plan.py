"""config → plan: dataset items, codec variants, and the content-hash keys that make runs resumable.

A unit key hashes the item's audio bytes (+ segment setting), the canonical codec spec, the weights file
identity and the versions of evalkit and the codec libraries; a result key adds the metric name, its
definition version and its library version. Changing one codec or metric changes only its keys.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import evalkit
from evalkit.codecs import CodecSpec, build_codec
from evalkit.codecs.weights import WeightsNotFound, get_entry
from evalkit.metrics import Metric
from evalkit.runner.config import DatasetConfig

CODEC_LIBRARIES = {"encodec": "encodec", "dac": "descript-audio-codec",
                   "opus": "av", "mp3": "av", "aac": "av"}  # PyAV's wheel pins FFmpeg, libopus and LAME


@dataclass(frozen=True)
class Item:
    item_id: str
    path: Path
    content_hash: str
    category: str = ""
    text: str | None = None  # transcript (manifest column `text`), for wer/cer


@dataclass(frozen=True)
class Variant:
    """A codec variant of the plan: runnable, or skipped with the reason and how to fix it."""

    spec: CodecSpec
    identity: str  # spec + weights identity + library versions, hashed into unit keys
    skipped: str | None = None


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def list_items(ds: DatasetConfig) -> Iterator[Item]:
    """Dataset items in a stable order (sorted paths, or manifest order); unreadable files still get an item."""
    if ds.manifest is not None:
        with open(ds.manifest, newline="") as fh:
            rows = list(csv.DictReader(fh))
        entries = [(ds.manifest.parent / r["file"], r) for r in rows]
        root = ds.manifest.parent
    else:
        entries = [(p, {}) for p in sorted(ds.folder.glob(ds.glob)) if p.is_file()]
        root = ds.folder
        manifest = ds.folder / "MANIFEST.csv"
        if manifest.is_file():
            with open(manifest, newline="") as fh:
                described = {r["file"]: r for r in csv.DictReader(fh)}
            entries = [(p, described.get(p.name, {})) for p, _ in entries]
    for n, (path, row) in enumerate(entries):
        category, text = row.get("category") or "", row.get("text") or None
        if ds.max_items is not None and n >= ds.max_items:
            return
        content = file_hash(path) if path.is_file() else "missing"
        segment = f"|segment={ds.segment_seconds}" if ds.segment_seconds else ""
        try:  # relative path without suffix: unique even for same-named files in sub-folders
            item_id = path.relative_to(root).with_suffix("").as_posix()
        except ValueError:
            item_id = path.stem
        yield Item(item_id, path, hashlib.sha256((content + segment).encode()).hexdigest()[:32], category, text)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def plan_variant(spec: CodecSpec) -> Variant:
    """Resolve weights identity without downloading; missing pretrained weights make the variant skipped."""
    codec = build_codec(spec, device="cpu")
    parts = [str(spec), f"evalkit={evalkit.__version__}"]
    model_family = spec.params.get("base", spec.family)  # a KLT variant runs its base codec's library
    for prefix, dist in CODEC_LIBRARIES.items():
        if model_family.startswith(prefix):
            parts.append(f"{dist}={_version(dist)}")
    if (identity := codec.weights_identity()) is not None:  # e.g. a QinCodec checkpoint's SHA-256
        parts.append(identity)
    weights = spec.params.get("weights")
    if weights is not None and weights != "random":
        entry = get_entry(codec.arch.weights_name)
        explicit = None if weights == "pretrained" else weights
        try:
            path = entry.resolve(explicit, allow_download=False)
        except WeightsNotFound:
            where = explicit or f"$EVALKIT_WEIGHTS or {entry.cache_dir()}"
            return Variant(spec, "|".join(parts), f"weights {Path(explicit).name if explicit else entry.filename} "
                                                   f"not found ({where}); get them with `evalkit weights fetch "
                                                   f"{entry.name}` (see `evalkit weights status`)")
        stat = path.stat()
        parts.append(f"weights={path.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return Variant(spec, "|".join(parts))


# Pseudo-variant "reference": no-reference metrics scored once per item on the item itself, so that exports
# can show each codec's delta. Its unit runs no codec; its results are ordinary rows.
REFERENCE = Variant(CodecSpec("reference"), "reference")


def unit_key(item: Item, variant: Variant) -> str:
    return hashlib.sha256(f"{item.content_hash}|{variant.identity}".encode()).hexdigest()[:32]


def result_key(unit: str, metric: Metric, text: str | None = None) -> str:
    """Key of one result; ``text`` (the item's transcript) is part of it for metrics that read it."""
    info = metric.info
    parts = [unit, info.name, info.version, info.library, info.library_version()]
    if info.needs_text:
        parts.append(text)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]
