"""config → plan: dataset items, codec variants, and the keys that make runs resumable.

An item is a file: its id is its path relative to the dataset root, extension included. A unit key hashes
the item id and its audio bytes (and PyAV's version for an item FFmpeg decodes: ``.m4a``, ``.aac``), the
variant identity (canonical codec spec, weights file identity, the device the codec runs on, evalkit and codec
library versions) and the decode settings (channel policy, segmenting), plus the chunk and context lengths when the
codec codes the item in chunks (:mod:`evalkit.codecs.chunking`: items longer than its threshold);
a result key adds the metric name, its definition version, its library version and the score settings
(alignment). Changing one setting, codec or metric changes exactly the keys it affects. A plugin family's
variants add the plugin's identity (distribution version, or the plugin file's SHA-256); a decoded-folder
unit adds the SHA-256 of the item's decoded file and codes file (see :mod:`evalkit.runner.decoded`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import soundfile as sf

import evalkit
from evalkit.audio import PYAV_EXTENSIONS, AudioError, plain_wav_layout, pyav_header
from evalkit.codecs import FAMILIES, CodecSpec, build_codec
from evalkit.codecs.chunking import Chunking
from evalkit.codecs.rvq import pretrained_model_of, weights_file_problem
from evalkit.codecs.safe_load import WeightsFileError
from evalkit.codecs.weights import WeightsNotFound, get_entry
from evalkit.hashing import read_sha256
from evalkit.metrics import Metric
from evalkit.metrics.segments import DEFAULT_SEGMENT_S, is_segmented, segmentation_key
from evalkit.runner.dataset import DESCRIPTIONS, default_files, empty_file_rows, manifest_rows, not_utf8, skipped_note
from evalkit.runner.decoded import WEIGHTS_LABEL, DecodedSource, is_decoded_spec
from evalkit.runner.formats import read_entries
from evalkit.runner.layout import ITEMS_CACHE
from evalkit.runner.listing_cache import Header, ListingCache
from evalkit.runner.materialise import ItemFiles
from evalkit.versions import installed_version
from evalkit.worker_setup import available_cores

if TYPE_CHECKING:  # workers import this module: not the config's validation (pydantic)
    from evalkit.runner.config import DatasetConfig

log = logging.getLogger(__name__)
CODEC_LIBRARIES = {"encodec": "encodec", "dac": "descript-audio-codec",
                   "opus": "av", "mp3": "av", "aac": "av"}  # PyAV's wheel pins FFmpeg, libopus and LAME
MISSING = "missing"
UNREADABLE = "unreadable"  # the content hash of a file that exists but cannot be read (its units fail)
LISTING_THREADS = 8  # files examined at once: reading, hashing and header parsing release the GIL
LISTING_BLOCK = 64  # files per thread task


@dataclass(frozen=True)
class Item:
    """One dataset file. ``sample_rate`` is ``None`` when the file cannot be read (its units fail)."""

    item_id: str  # path relative to the dataset root, extension included
    path: Path
    content_hash: str  # SHA-256 of the file's bytes ("missing" when absent)
    category: str = ""
    sample_rate: int | None = None
    text: str | None = None  # transcript (manifest column `text`), for wer/cer
    seconds: float = 0.0  # duration from the file's header (0 when unreadable); orders the work, keys nothing
    channels: int | None = None  # from the file's header (None when unreadable); checks codec limits, keys nothing


@dataclass(frozen=True)
class Variant:
    """A codec variant of the plan: runnable, or skipped with the reason and how to fix it.

    ``bitrate_kbps`` and ``weights`` are the labels every export shows for this variant; ``chunking`` how its
    codec codes long items (part of the keys of the items it chunks).
    """

    spec: CodecSpec
    identity: str  # spec + weights identity + device + library versions, hashed into unit keys
    weights: str
    bitrate_kbps: float | None
    skipped: str | None = None
    chunking: Chunking | None = None


def _inside_check(resolved_folder: Path):
    """``path -> whether it resolves to a path inside resolved_folder``, resolving each folder once for all its
    files (a file that is a link is resolved itself); for one listing (a link may change between two)."""
    real_folders: dict[str, str] = {}

    def inside(path: Path) -> bool:
        folder, name = os.path.split(os.path.abspath(path))
        if os.path.islink(path) or name in ("", ".", ".."):
            real = os.path.realpath(path)
        else:
            if folder not in real_folders:
                real_folders[folder] = os.path.realpath(folder)
            real = os.path.join(real_folders[folder], name)
        return Path(real).is_relative_to(resolved_folder)

    return inside


def _header(path: Path) -> Header:
    """(sample rate, channels, seconds) from the file's header; ``(None, None, 0.0)`` when it cannot be read."""
    try:
        if path.suffix.lower() in PYAV_EXTENSIONS:
            return pyav_header(path)
        info = sf.info(str(path))
        return int(info.samplerate), int(info.channels), float(info.frames) / info.samplerate
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError, ZeroDivisionError, AudioError):
        return None, None, 0.0


def _manifest_rows(path: Path, field: str = "dataset.manifest") -> list[tuple[int, dict]]:
    try:
        return manifest_rows(path)[1]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{field}: {path}: {not_utf8(exc)}") from None


def manifest_files(ds: DatasetConfig) -> list[Path]:
    """The files a manifest dataset lists (as paths from the manifest's folder); ``[]`` for a folder dataset.

    Raises:
        ValueError: the manifest is not UTF-8 text.
    """
    if ds.manifest is None:
        return []
    return [ds.manifest.parent / r["file"] for _, r in _manifest_rows(ds.manifest) if r.get("file")]


def list_items(ds: DatasetConfig, exclude: Path | None = None, cache: Path | None = None,
               known: ListingCache | None = None) -> Iterator[Item]:
    """Dataset items in a stable order (sorted paths, or manifest order); unreadable files still get an item.

    Without ``ds.glob``, a folder's items are its audio files (:func:`default_files`) and the other files are
    named in one logged line. Files inside ``exclude`` (the output folder) are never items. The items of a
    ``scp``, ``lhotse``, ``hf`` or ``jsonl`` dataset that are not whole files are written into ``cache``
    (:mod:`evalkit.runner.materialise`; default ``exclude/cache/items``). ``known``: what earlier listings read
    (:mod:`evalkit.runner.listing_cache`), so that unchanged files are not read again.

    Raises:
        ValueError: a manifest is not UTF-8 text, has a row with an empty ``file``, lists the same file twice
            or a file inside ``exclude``; a dataset list that cannot be read (:class:`~evalkit.runner.formats.\
DatasetError`).
    """
    if ds.source_field not in ("folder", "manifest"):
        yield from _listed_items(ds, cache or _items_cache(exclude), known)
        return
    column = ds.category_column or "category"
    exclude = exclude.resolve() if exclude is not None else None
    if ds.manifest is not None:
        rows = _manifest_rows(ds.manifest)
        if empty := empty_file_rows(rows):
            raise ValueError(f"dataset.manifest: {ds.manifest}: {empty}")
        root = ds.manifest.parent
        entries = [(root / r["file"], r) for _, r in rows]
        excluded = _inside_check(exclude) if exclude is not None else None
        if excluded is not None and (inside := [str(p) for p, _ in entries if excluded(p)]):
            raise ValueError(f"dataset.manifest: {inside[0]} is inside the output folder {exclude}")
    else:
        root = ds.folder
        if ds.glob is None:
            found, skipped = default_files(ds.folder)
            if skipped:
                log.warning("%s", skipped_note(ds.folder, skipped))
        else:
            found = sorted(ds.folder.glob(ds.glob), key=lambda p: p.parts)  # Path's order, without its __lt__
        excluded = _inside_check(exclude) if exclude is not None else lambda p: False
        entries = [(p, {}) for p in found if p.is_file() and not excluded(p)]
        manifest = ds.folder / DESCRIPTIONS
        if manifest.is_file():
            described = {r.get("file"): r for _, r in _manifest_rows(manifest, "dataset.folder")}
            entries = [(p, described.get(p.relative_to(root).as_posix(), described.get(p.name, {})))
                       for p, _ in entries]
    entries = entries[: ds.max_items]
    seen: set[str] = set()
    ids = []
    for path, _ in entries:  # every id first: a duplicate is refused before any file is read
        try:
            item_id = path.relative_to(root).as_posix()
        except ValueError:  # a manifest entry outside its folder: the absolute path is its identity
            item_id = path.resolve().as_posix()
        if item_id in seen:
            raise ValueError(f"dataset.manifest: {item_id} is listed twice")
        seen.add(item_id)
        ids.append(item_id)
    examined = examine_files([path for path, _ in entries], known)
    for item_id, (path, row), (header, content_hash) in zip(ids, entries, examined, strict=True):
        category, text = row.get(column) or "", row.get("text") or None
        rate, channels, seconds = header
        yield Item(item_id, path, content_hash, category, rate, text, seconds, channels)


def _examine_file(path: Path, known: ListingCache | None = None) -> tuple[Header, str]:
    """(header, content hash) of one file, read once: a plain WAV file's header comes from the bytes read for
    the hash (:func:`evalkit.audio.plain_wav_layout`), any other's from its decoder; no header and the hash
    ``missing`` for an absent file, ``unreadable`` for one that cannot be read. ``known``: entries of earlier
    listings, used for an unchanged file (and given this one's)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return (None, None, 0.0), MISSING
    except OSError:  # no permission, an I/O error: its units fail, with the reason, when the worker reads it
        return (None, None, 0.0), UNREADABLE
    if not stat.S_ISREG(st.st_mode):
        return (None, None, 0.0), MISSING
    if known is not None and (entry := known.lookup(path, st)) is not None:
        return entry
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())  # of the file read (it may have been replaced since)
            read_ns = time.time_ns()
            content_hash, head = read_sha256(fh)
    except OSError:
        return (None, None, 0.0), UNREADABLE
    layout = plain_wav_layout(head, st.st_size) if path.suffix.lower() == ".wav" else None
    if layout is None or layout.frames == 0:
        header = _header(path)
    else:
        header = (layout.rate, layout.channels, layout.frames / layout.rate)
    if known is not None:
        known.record(path, st, read_ns, header, content_hash)
    return header, content_hash


def _examine(paths: list[Path], known: ListingCache | None = None) -> list[tuple[Header, str]]:
    return [_examine_file(p, known) for p in paths]


def examine_files(paths: list[Path], known: ListingCache | None = None) -> Iterator[tuple[Header, str]]:
    """(header, content hash) of each path, in order, several files at once (up to :data:`LISTING_THREADS`
    threads, one per core): on a large dataset reading and hashing every file is most of the listing. With
    ``known`` (:class:`~evalkit.runner.listing_cache.ListingCache`), an unchanged file is not read again."""
    blocks = [paths[i:i + LISTING_BLOCK] for i in range(0, len(paths), LISTING_BLOCK)]
    threads = min(LISTING_THREADS, available_cores(), len(blocks))
    if threads <= 1:
        for block in blocks:
            yield from _examine(block, known)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="evalkit-list")
    try:
        for done in pool.map(functools.partial(_examine, known=known), blocks):
            yield from done
    finally:  # an abandoned listing (an error while planning) reads no further blocks
        pool.shutdown(wait=True, cancel_futures=True)


def _items_cache(output: Path | None) -> Path:
    if output is None:
        raise ValueError("dataset: a cache folder is needed for the items of this dataset format")
    return output / ITEMS_CACHE[0] / ITEMS_CACHE[1]


def _listed_items(ds: DatasetConfig, cache: Path, known: ListingCache | None) -> Iterator[Item]:
    """The items of a ``scp``, ``lhotse``, ``hf`` or ``jsonl`` dataset, each an audio file of exactly its samples."""
    entries = read_entries(ds)[: ds.max_items]
    files = ItemFiles(cache, "segments" if ds.segments is not None else ds.source_field)
    paths = [files.file_of(entry) for entry in entries]
    for entry, path, ((rate, channels, seconds), content_hash) in zip(entries, paths, examine_files(paths, known),
                                                                      strict=True):
        yield Item(entry.item_id, path, content_hash, entry.category, rate, entry.text, seconds, channels)


def _version(dist: str) -> str:
    return installed_version(dist, missing="none")  # "none" is hashed into unit keys: keep it


def plan_variant(spec: CodecSpec, device: str = "cpu") -> Variant:
    """Resolve the variant's identity and labels without downloading or loading a model.

    The identity includes the device the codec really runs on (``device`` resolved; the low-pass anchors
    always run on the CPU). Missing pretrained weights found through the search path make the variant
    skipped, with the command that fetches them; a weights file found there that would be refused at load time
    (:meth:`~evalkit.codecs.rvq.PretrainedRvqCodec.check_weights_file`) skips it with that reason.

    A decoded folder's identity is its spec (folder, label, declared bitrate) and evalkit's version; each of
    its units adds its files' hashes (:func:`unit_key`).

    Raises:
        WeightsNotFound: an explicit ``weights=PATH`` that does not exist (a config error, not a skip).
        WeightsFileError: an explicit ``weights=PATH`` that would be refused at load time.
    """
    if is_decoded_spec(spec):
        source = DecodedSource.from_spec(spec)
        return Variant(spec, f"{spec}|evalkit={evalkit.__version__}", WEIGHTS_LABEL, source.bitrate_kbps)
    codec = build_codec(spec, device=device)
    parts = [str(spec), f"evalkit={evalkit.__version__}", f"device={codec.device_type}"]
    if (plugin := FAMILIES.source(spec.family).identity()) is not None:  # the plugin's code version
        parts.append(plugin)
    model_family = spec.params.get("base", spec.family)  # a KLT variant runs its base codec's library
    for prefix, dist in CODEC_LIBRARIES.items():
        if model_family.startswith(prefix):
            parts.append(f"{dist}={_version(dist)}")
    if (library := codec.library_identity()) is not None:  # e.g. the anchors' scipy
        parts.append(library)
    if (identity := codec.weights_identity()) is not None:  # e.g. a QinCodec checkpoint's SHA-256
        parts.append(identity)
    bitrate = codec.bitrate_bps
    labels: dict[str, Any] = {"weights": codec.weights_label,
                              "bitrate_kbps": None if bitrate is None else bitrate / 1000, "chunking": codec.chunking}
    weights = spec.params.get("weights")
    if isinstance(weights, str) and weights not in ("random", "pretrained") and not hasattr(codec, "arch"):
        path = Path(weights)  # a plugin codec's weights file: its identity as for evalkit's own
        if not path.is_file():
            raise WeightsNotFound(f"{spec}: weights file {weights} does not exist")
        stat = path.stat()
        parts.append(f"weights={path.name}:{stat.st_size}:{int(stat.st_mtime)}")
    elif weights is not None and weights != "random" and hasattr(codec, "arch"):
        entry = get_entry(codec.arch.weights_name)
        explicit = None if weights == "pretrained" else weights
        if explicit is not None and not Path(explicit).is_file():
            raise WeightsNotFound(f"{spec}: weights file {explicit} does not exist")
        try:
            path = entry.resolve(explicit, allow_download=False)
        except WeightsNotFound:
            where = f"$EVALKIT_WEIGHTS or {entry.cache_dir()}"
            return Variant(spec, "|".join(parts), **labels,
                           skipped=f"weights {entry.filename} not found ({where}); get them with `evalkit weights "
                                   f"fetch {entry.name}` (see `evalkit weights status`)")
        model = pretrained_model_of(codec)
        if model is not None and (problem := weights_file_problem(model, path)) is not None:
            if explicit is not None:
                raise WeightsFileError(f"{spec}: {problem}")
            return Variant(spec, "|".join(parts), **labels, skipped=f"weights refused: {problem}")
        stat = path.stat()
        parts.append(f"weights={path.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return Variant(spec, "|".join(parts), **labels)


# Pseudo-variant "reference": no-reference metrics scored once per item on the item itself, so that exports
# can show each codec's delta. Its unit runs no codec; its results are ordinary rows.
REFERENCE = Variant(CodecSpec("reference"), "reference", weights="none", bitrate_kbps=None)


def _hash(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def unit_key(item: Item, variant: Variant, decode_settings: dict[str, Any], chunked: Chunking | None = None) -> str:
    """Key of one (file, variant) under the settings that change decoded audio (plus, for a decoded folder,
    the hashes of the item's decoded and codes files); ``chunked``: the chunking the item is coded with
    (:func:`chunking_for`), whose lengths a chunked unit adds (an item coded whole keeps the key it always had)."""
    parts = [item.item_id, item.content_hash, variant.identity, decode_settings]
    if chunked is not None:
        parts.append({"chunked": chunked.key()})
    if item.item_id.lower().endswith(PYAV_EXTENSIONS):  # its samples come from FFmpeg's decoder
        parts.append(f"av={_version('av')}")
    if is_decoded_spec(variant.spec):
        parts.append(DecodedSource.from_spec(variant.spec).key_parts(item.item_id))
    return _hash(parts)


def result_key(unit: str, metric: Metric, score_settings: dict[str, Any], text: str | None = None,
               segmented: float | None = None) -> str:
    """Key of one metric value of a unit under the settings that change metric values; ``text`` (the item's
    transcript) is part of it for metrics that read it; ``segmented`` (the segment length, s, of an item scored
    in segments) adds the segment length and the metric's aggregation rule."""
    info = metric.info
    parts = [unit, info.name, info.version, info.library, info.library_version(), score_settings]
    if info.needs_text:
        parts.append(text)
    if segmented:
        parts.append(segmentation_key(metric, segmented))
    return _hash(parts)


def _input_samples(item: Item, decode_settings: dict[str, Any]) -> int | None:
    """Samples of the item the codecs and metrics get (its header's length, cut by ``segment_seconds``)."""
    if item.sample_rate is None:
        return None
    samples = round(item.seconds * item.sample_rate)
    if cut := decode_settings.get("segment_seconds"):
        samples = min(samples, int(cut * item.sample_rate))
    return samples


def scored_segment_s(item: Item, decode_settings: dict[str, Any]) -> float | None:
    """The segment length (s) the item's pairs are scored in, ``None`` when they are scored whole (see
    :mod:`evalkit.metrics.segments`), from its header and the dataset's ``segment_seconds`` cut."""
    samples = _input_samples(item, decode_settings)
    if samples is None:
        return None
    return DEFAULT_SEGMENT_S if is_segmented(samples, item.sample_rate) else None


def chunking_for(item: Item, variant: Variant, decode_settings: dict[str, Any]) -> Chunking | None:
    """The chunking ``variant``'s codec codes the item with (an item longer than its threshold), else ``None``."""
    samples = _input_samples(item, decode_settings)
    if samples is None or variant.chunking is None or not variant.chunking.applies(samples, item.sample_rate):
        return None
    return variant.chunking
