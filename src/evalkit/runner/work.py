"""The work done for one item: every pending codec variant, each encoded/decoded once, every metric on it.

A task carries one item and its pending units so the reference is loaded, resampled and analysed once and
reused by every variant (:class:`evalkit.metrics.Reference`). Tasks and outcomes are plain picklable
records: the same function runs in-process, in a local process pool or on Dask workers. Workers never touch
the store; decoded audio and codes travel back in the outcome and the coordinator writes them.

A decoded-folder unit runs no codec: its decoded file is read and matched to the item
(:func:`evalkit.runner.decoded.read_decoded`) and scored like a codec's output. Plugin files named by the task
are imported (once per process) before its first unit.

Nothing raised inside a unit escapes: bad input audio gives ``failed`` units, any other exception ``error``
units (retried by the next run), both with NaN rows for every metric and the exception's type and message.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from evalkit import audio as audio_lib
from evalkit.codecs import Codec, load_plugin_files
from evalkit.codecs.spec import split_spec
from evalkit.metrics import Reference, get_metric, get_metrics, load_metric_plugins, score_pair
from evalkit.metrics.codebook import valid_frames
from evalkit.native_memory import mapped_allocations, release_free_memory
from evalkit.runner.codec_cache import CodecCache
from evalkit.runner.decoded import WEIGHTS_LABEL, DecodedSource, is_decoded_spec, read_decoded
from evalkit.runner.layout import temporary_path
from evalkit.runner.plan import REFERENCE, Item, scored_segment_s
from evalkit.runner.store import ResultRow, UnitRow, UnitStatus, field_names, to_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitJob:
    unit_key: str
    spec: str
    metrics: tuple[tuple[str, str], ...]  # (result_key, metric name) still to compute
    decoded_path: str | None = None  # cached decoded audio: the codec need not run again
    chunked: bool = False  # the codec codes the item in chunks (planned, and part of unit_key)


@dataclass(frozen=True)
class ItemTask:
    """One item and its pending units, with the settings hashed into their keys.

    ``decode`` holds ``channel_policy`` and ``segment_seconds``; ``score`` holds keyword arguments of
    :func:`evalkit.metrics.score_pair` (``max_delay_s``, ...).
    """

    item: Item
    jobs: tuple[UnitJob, ...]
    device: str
    decode: dict[str, Any] = field(default_factory=dict)
    score: dict[str, Any] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()  # plugin files to import before the first unit (config ``plugins``)
    #: the decoded-audio cache folder, where a worker on the coordinator's machine (a local run) writes a long
    #: unit's decoded audio itself, under a temporary name the coordinator renames (``None``: it travels back)
    decoded_dir: str | None = None

    @cached_property
    def decode_json(self) -> str:
        """``decode`` as stored with each unit (made once per task, not per unit)."""
        return json.dumps(self.decode, sort_keys=True)

    @cached_property
    def score_json(self) -> str:
        """``score`` as stored with each result."""
        return json.dumps(self.score, sort_keys=True)


BULK_BYTES = 1 << 20  # decoded audio of this size or more travels from a worker as raw bytes


@dataclass
class UnitOutcome:
    unit: UnitRow
    results: list[ResultRow]
    decoded: np.ndarray | None = None  # new decoded audio [channels, samples] at the input rate
    codes: np.ndarray | None = None  # new codes [batch, n_codebooks, valid frames]
    rescored: bool = False  # cached decoded audio was rescored; the stored unit row stays as it is
    variant_info: str | None = None  # codec.info() of the variant (KLT spectrum, accounting)
    warmup_s: dict[str, float] = field(default_factory=dict)  # one-off metric warm-up this unit's worker paid
    decoded_file: str | None = None  # the decoded audio, written by the worker under this temporary name

    def detach_bulk(self) -> np.ndarray | None:
        """Take the decoded audio out when it is large (:data:`BULK_BYTES` or more), for a worker to send as raw
        bytes (:func:`evalkit.worker_setup.send_outcome`); ``None``: it stays, to be pickled with the rest."""
        if self.decoded is None or self.decoded.nbytes < BULK_BYTES:
            return None
        bulk, self.decoded = np.ascontiguousarray(self.decoded), None
        return bulk

    def attach_bulk(self, bulk: np.ndarray) -> None:
        """Put back what :meth:`detach_bulk` took out (the coordinator's end)."""
        self.decoded = bulk


CODECS = CodecCache()  # per process: each worker keeps its own


def prepare_worker(specs: tuple[str, ...], device: str, metrics: tuple[str, ...] = ()) -> None:
    """What a pool worker does while the coordinator plans, out of the first unit's wall time and outside a long
    item's mapped allocations: load the variants of ``specs`` that are array transforms (FFmpeg codecs, anchors:
    a library to import, no model); import torch if another variant is a model codec, and the modules the
    ``metrics`` import on first use (their ``imports``). Model codecs load with their first unit: a long item's
    worker holds one model at a time. A failure is left for the units to record."""
    from evalkit.codecs import ArrayTransform, build_codec

    modules: dict[str, None] = {}
    for spec in specs:
        try:
            if isinstance(build_codec(spec, device), ArrayTransform):
                CODECS.get(spec, device)
            else:
                modules["torch"] = None
        except Exception:  # noqa: BLE001 - the unit that runs it records the same failure with its reason
            log.debug("preparing %s before the first task failed", spec, exc_info=True)
    for name in metrics:
        with contextlib.suppress(KeyError, ValueError):  # a plugin metric that failed here: its units say why
            modules.update(dict.fromkeys(get_metric(name).imports))
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - as above
            log.debug("importing %s before the first task failed", module, exc_info=True)


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` (bad input audio keeps its own "file: reason" message)."""
    if isinstance(exc, audio_lib.AudioError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _unit(item: Item, job: UnitJob, task: ItemTask, status: UnitStatus, reason: str | None = None,
          **fields) -> UnitRow:
    family = split_spec(job.spec)[0]  # canonical already; no registry lookup, so a failure can always be recorded
    return UnitRow(unit_key=job.unit_key, item_id=item.item_id, item_path=str(item.path), category=item.category,
                   content_hash=item.content_hash, codec_spec=job.spec, family=family,
                   status=status, reason=reason, settings=task.decode_json, **fields)


def nan_rows(item: Item, job: UnitJob, reason: str, score: dict[str, Any] | None = None) -> list[ResultRow]:
    """One NaN row with ``reason`` for every metric the job still needs."""
    rows = []
    settings = json.dumps(score or {}, sort_keys=True)
    for key, name in job.metrics:
        try:
            info = get_metric(name).info
        except (KeyError, ValueError):  # a plugin metric whose file failed in this worker: the row still goes in
            rows.append(ResultRow(key, job.unit_key, item.item_id, job.spec, name, math.nan, "", reason, "", "", "",
                                  None, 0.0, settings))
            continue
        rows.append(ResultRow(key, job.unit_key, item.item_id, job.spec, name, math.nan, info.unit, reason,
                              info.version, info.library, info.library_version(), None, 0.0, settings))
    return rows


def _failure(task: ItemTask, job: UnitJob, exc: BaseException, **fields) -> UnitOutcome:
    status = UnitStatus.FAILED if isinstance(exc, audio_lib.AudioError) else UnitStatus.ERROR
    reason = describe_exception(exc)
    return UnitOutcome(_unit(task.item, job, task, status, reason, **fields),
                       nan_rows(task.item, job, reason, task.score))


def run_item_task(task: ItemTask) -> list[UnitOutcome]:
    """Process one item against all its pending variants; exceptions become failed units with reasons."""
    return list(iter_item_task(task))


def error_outcomes(task: ItemTask, jobs: Iterable[UnitJob], exc: BaseException) -> list[UnitOutcome]:
    """``error`` units (``failed`` for bad audio) with NaN rows for ``jobs``, the reason taken from ``exc``."""
    return [_failure(task, job, exc) for job in jobs]


def iter_item_task(task: ItemTask) -> Iterator[UnitOutcome]:
    """:func:`run_item_task`, one unit's outcome at a time (as each unit finishes). A long item (scored in
    segments) runs with its large blocks mapped on their own, so freed memory goes back to the system at once, and
    lets go of each codec before its metrics run."""
    long = scored_segment_s(task.item, task.decode) is not None
    with mapped_allocations() if long else contextlib.nullcontext():
        yield from _iter_item_task(task, long)


def _iter_item_task(task: ItemTask, long: bool) -> Iterator[UnitOutcome]:
    item = task.item
    try:
        load_plugin_files(task.plugins)
        load_metric_plugins(task.plugins)
    except Exception as exc:  # noqa: BLE001 - a plugin that breaks in this worker: every unit errs with it
        yield from error_outcomes(task, task.jobs, exc)
        return
    try:
        clip = audio_lib.load(item.path)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded per unit, the run goes on
        yield from error_outcomes(task, task.jobs, exc)
        return
    samples = clip.samples
    segment = task.decode.get("segment_seconds")
    if segment:
        samples = samples[:, : int(segment * clip.sample_rate)]
    reference = Reference(samples, clip.sample_rate, str(item.path), text=item.text)
    level = audio_lib.peak(samples)  # what the codecs get: beyond full scale, most clip or saturate
    common = dict(input_rate=clip.sample_rate, input_channels=int(samples.shape[0]),
                  input_seconds=samples.shape[1] / clip.sample_rate, input_peak_dbfs=level.dbfs,
                  input_over_full_scale=level.over_full_scale)
    for job in task.jobs:
        try:
            outcome = _run_job(task, job, reference, common, item_samples=clip.samples.shape[1], keep_codec=not long)
        except Exception as exc:  # noqa: BLE001 - codec or metric: failed rows with type and message
            log.debug("unit %s failed", job.unit_key, exc_info=True)
            outcome = _failure(task, job, exc, **common)
        if task.decoded_dir is not None:
            _write_long_decoded(outcome, task.decoded_dir)
        yield outcome
        del outcome  # a long item's decoded audio is not held while the next unit runs


def _write_long_decoded(outcome: UnitOutcome, folder: str) -> None:
    """Write a long unit's decoded audio (:data:`BULK_BYTES` or more) into the cache ``folder`` under a temporary
    name, so that it reaches the coordinator as a path: the coordinator never holds it. Should the write fail,
    the audio stays in the outcome and the coordinator writes it (and reports the failure, a full disk)."""
    decoded = outcome.decoded
    if decoded is None or decoded.nbytes < BULK_BYTES:
        return
    final = Path(folder) / f"{outcome.unit.unit_key}.wav"
    tmp = temporary_path(final)  # swept by the next run if this one dies
    try:
        audio_lib.save_float_wav(tmp, decoded, outcome.unit.input_rate)
    except (OSError, ValueError) as exc:  # ValueError: beyond the 4 GiB a WAV file holds
        log.warning("%s: could not write its decoded audio (%s); the coordinator will", outcome.unit.unit_key, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()
        return
    outcome.decoded, outcome.decoded_file = None, str(tmp)


def _cached_decoded(job: UnitJob, reference: Reference, whole: bool = True
                    ) -> np.ndarray | audio_lib.FileSignal | None:
    """The cached decoded audio (``whole=False``, a long item's: the file, read segment by segment when scored),
    or ``None`` when it is missing, unreadable or of the wrong length."""
    if job.decoded_path is None:
        return None
    try:
        if whole:
            decoded = audio_lib.load(job.decoded_path, allow_silent=True).samples
        else:
            decoded = audio_lib.FileSignal.open(job.decoded_path, source=job.spec)
            if decoded.sample_rate != reference.sample_rate:
                raise audio_lib.AudioError(job.decoded_path, f"rate {decoded.sample_rate} Hz, expected "
                                                             f"{reference.sample_rate} Hz")
    except audio_lib.AudioError as exc:
        log.warning("recomputing %s: cached decoded audio unusable (%s)", job.unit_key, exc)
        return None
    if decoded.shape[1] != reference.samples.shape[1]:
        log.warning("recomputing %s: cached decoded audio has %d samples, expected %d", job.unit_key,
                    decoded.shape[1], reference.samples.shape[1])
        return None
    return decoded


def _decoded_outcome(task: ItemTask, job: UnitJob, reference: Reference, common: dict,
                     item_samples: int) -> UnitOutcome:
    """A decoded-folder unit: the item's decoded file matched to the reference (raises DecodedError)."""
    source = DecodedSource.from_spec(job.spec)
    unit = read_decoded(source, task.item.item_id, reference.samples, reference.sample_rate, item_samples,
                        task.decode["channel_policy"])
    fields = dict(weights=WEIGHTS_LABEL, bitrate_bps=None if source.bitrate_kbps is None else
                  source.bitrate_kbps * 1000, reconstruction=to_json(unit.report))
    if unit.codes is not None:
        fields.update(frame_rate=unit.frame_rate, cardinality=source.cardinality, num_codebooks=unit.num_codebooks)
    return UnitOutcome(_unit(task.item, job, task, UnitStatus.OK, **fields, **common), [], unit.audio, unit.codes)


def _run_job(task: ItemTask, job: UnitJob, reference: Reference, common: dict, item_samples: int = 0,
             keep_codec: bool = True) -> UnitOutcome:
    """One unit: its codec (or its cached or decoded-folder audio), then its metrics. ``keep_codec=False`` (a long
    item) lets go of the codec's model before the metrics run: the metrics' peak and the next variant's codec then
    do not add to it (loading it again costs seconds against the minutes a long item takes); in a local run its
    decoded audio (new or cached) is scored from its file, a segment at a time."""
    item, rate = task.item, reference.sample_rate
    metrics = get_metrics(name for _, name in job.metrics)
    decoded = _cached_decoded(job, reference, whole=keep_codec)
    if job.spec == str(REFERENCE.spec):  # no-reference metrics on the item itself, once per item
        decoded = reference.samples
        outcome = UnitOutcome(_unit(item, job, task, UnitStatus.OK, **common), [])
    elif decoded is not None:
        outcome = UnitOutcome(_unit(item, job, task, UnitStatus.OK, **common), [], rescored=True)
    elif is_decoded_spec(job.spec):
        try:
            outcome = _decoded_outcome(task, job, reference, common, item_samples or reference.samples.shape[1])
        except audio_lib.AudioError as exc:  # missing or unfit decoded file: failed, with the reason
            return _failure(task, job, exc, weights=WEIGHTS_LABEL, **common)
        decoded = outcome.decoded
    else:
        codec = CODECS.get(job.spec, task.device)
        try:
            rec = codec.reconstruct(reference.samples, rate, channel_policy=task.decode["channel_policy"],
                                    source=str(item.path), chunked=job.chunked)
        except Exception as exc:  # noqa: BLE001 - recorded with the codec's provenance
            return _failure(task, job, exc, weights=codec.weights_label, device=codec.device_name, **common)
        decoded = rec.audio
        codes = None
        fields = dict(weights=codec.weights_label, device=codec.device_name, bitrate_bps=codec.bitrate_bps,
                      measured_bitrate_bps=rec.report.measured_bitrate_bps,
                      encode_s=rec.report.encode_s, decode_s=rec.report.decode_s, process_s=rec.report.process_s,
                      reconstruction=to_json(rec.report))
        if isinstance(codec, Codec) and rec.encoded is not None:
            frames = rec.encoded.codes.shape[-1]
            if rec.encoded.segment_frames is None:
                frames = min(frames, valid_frames(rec.encoded.num_samples, codec.hop_length))
            small = codec.cardinality <= np.iinfo(np.int16).max + 1  # a plugin's K may not fit int16
            codes = rec.encoded.codes[..., :frames].cpu().numpy().astype(np.int16 if small else np.int32)
            fields.update(frame_rate=codec.frame_rate, cardinality=codec.cardinality,
                          num_codebooks=codec.num_codebooks)
        info = codec.info()
        outcome = UnitOutcome(_unit(item, job, task, UnitStatus.OK, **fields, **common), [], decoded, codes,
                              variant_info=to_json(info) if info else None)
        if not keep_codec:
            CODECS.drop(job.spec, task.device)
            del codec, rec
            if task.decoded_dir is not None:  # written now and scored from the file: never held whole while scored
                _write_long_decoded(outcome, task.decoded_dir)
                if outcome.decoded_file is not None:
                    decoded = audio_lib.FileSignal.open(outcome.decoded_file, source=job.spec)
            release_free_memory()
    scored = score_pair(reference, decoded, rate, metrics, source=job.spec, **task.score)
    settings = task.score_json
    outcome.warmup_s = {r.metric: r.warmup_s for r in scored if r.warmup_s}
    for (key, _), r in zip(job.metrics, scored, strict=True):
        outcome.results.append(ResultRow(key, job.unit_key, item.item_id, job.spec, r.metric, r.value, r.unit,
                                         r.reason, r.metric_version, r.library, r.library_version,
                                         _preparation_json(r.preparation), r.seconds, settings))
    return outcome


SEGMENT_FIELDS = ("segment_s", "segments", "aggregation", "segments_failed")


@functools.cache
def _whole_pair_fields(kind: type) -> tuple[str, ...]:
    return tuple(name for name in field_names(kind) if name not in SEGMENT_FIELDS)


def _preparation_json(prep) -> str | None:
    """The stored preparation record; a pair scored whole keeps the fields it had before segmenting existed."""
    if prep is None:
        return None
    if prep.segment_s is not None:
        return to_json(prep)
    return to_json({name: getattr(prep, name) for name in _whole_pair_fields(type(prep))})
