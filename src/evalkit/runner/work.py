"""The work done for one item: every pending codec variant, each encoded/decoded once, every metric on it.

A task carries one item and its pending units so the reference is loaded, resampled and analysed once and
reused by every variant (:class:`evalkit.metrics.Reference`). Tasks and outcomes are plain picklable
records: the same function runs in-process, in a local process pool or on Dask workers. Workers never touch
the store; decoded audio and codes travel back in the outcome and the coordinator writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evalkit import audio as audio_lib
from evalkit.codecs import AudioTransform, Codec, build_codec, parse_spec
from evalkit.metrics import Reference, get_metrics, score_pair
from evalkit.metrics.codebook import valid_frames
from evalkit.runner.plan import REFERENCE, Item
from evalkit.runner.store import ResultRow, UnitRow, to_json


@dataclass(frozen=True)
class UnitJob:
    unit_key: str
    spec: str
    metrics: tuple[tuple[str, str], ...]  # (result_key, metric name) still to compute
    decoded_path: str | None = None  # cached decoded audio: the codec need not run again


@dataclass(frozen=True)
class ItemTask:
    item: Item
    jobs: tuple[UnitJob, ...]
    segment_seconds: float | None
    channel_policy: str
    device: str
    max_delay_s: float


@dataclass
class UnitOutcome:
    unit: UnitRow
    results: list[ResultRow]
    decoded: np.ndarray | None = None  # new decoded audio [channels, samples] at the input rate
    codes: np.ndarray | None = None  # new codes [batch, n_codebooks, valid frames]
    rescored: bool = False  # cached decoded audio was rescored; the stored unit row stays as it is
    variant_info: str | None = None  # codec.info() of the variant (KLT spectrum, accounting)


_CODECS: dict[tuple[str, str], AudioTransform] = {}


def _codec(spec: str, device: str) -> AudioTransform:
    key = (spec, device)
    if key not in _CODECS:
        _CODECS[key] = build_codec(spec, device).load()
    return _CODECS[key]


def _unit(item: Item, job: UnitJob, status: str, reason: str | None = None, **fields) -> UnitRow:
    family = REFERENCE.spec.family if job.spec == str(REFERENCE.spec) else parse_spec(job.spec).family
    return UnitRow(unit_key=job.unit_key, item_id=item.item_id, item_path=str(item.path), category=item.category,
                   content_hash=item.content_hash, codec_spec=job.spec, family=family,
                   status=status, reason=reason, **fields)


def nan_rows(item: Item, job: UnitJob, reason: str) -> list[ResultRow]:
    rows = []
    for (key, name), metric in zip(job.metrics, get_metrics(n for _, n in job.metrics), strict=True):
        info = metric.info
        rows.append(ResultRow(key, job.unit_key, item.item_id, job.spec, name, math.nan, info.unit, reason,
                              info.version, info.library, info.library_version(), None, 0.0))
    return rows


def run_item_task(task: ItemTask) -> list[UnitOutcome]:
    """Process one item against all its pending variants; bad audio gives failed units with reasons."""
    item = task.item
    try:
        clip = audio_lib.load(item.path)
    except audio_lib.AudioError as exc:
        return [UnitOutcome(_unit(item, job, "failed", str(exc)), nan_rows(item, job, str(exc)))
                for job in task.jobs]
    samples = clip.samples
    if task.segment_seconds:
        samples = samples[:, : int(task.segment_seconds * clip.sample_rate)]
    reference = Reference(samples, clip.sample_rate, str(item.path), text=item.text)
    common = dict(input_rate=clip.sample_rate, input_channels=int(samples.shape[0]),
                  input_seconds=samples.shape[1] / clip.sample_rate)
    return [_run_job(task, item, job, reference, common) for job in task.jobs]


def _run_job(task: ItemTask, item: Item, job: UnitJob, reference: Reference, common: dict) -> UnitOutcome:
    rate = reference.sample_rate
    metrics = get_metrics(name for _, name in job.metrics)
    if job.spec == str(REFERENCE.spec):  # no-reference metrics on the item itself, once per item
        decoded = reference.samples
        outcome = UnitOutcome(_unit(item, job, "ok", **common), [])
    elif job.decoded_path is not None:
        decoded = audio_lib.load(job.decoded_path, allow_silent=True).samples
        outcome = UnitOutcome(_unit(item, job, "ok", **common), [], rescored=True)
    else:
        codec = _codec(job.spec, task.device)
        try:
            rec = codec.reconstruct(reference.samples, rate, channel_policy=task.channel_policy,
                                    source=str(item.path))
        except audio_lib.AudioError as exc:
            return UnitOutcome(_unit(item, job, "failed", str(exc), weights=codec.weights_label, **common),
                               nan_rows(item, job, str(exc)))
        decoded = rec.audio
        codes = None
        fields = dict(weights=codec.weights_label, device=str(codec.device), bitrate_bps=codec.bitrate_bps,
                      measured_bitrate_bps=rec.report.measured_bitrate_bps,
                      encode_s=rec.report.encode_s, decode_s=rec.report.decode_s, process_s=rec.report.process_s,
                      reconstruction=to_json(rec.report))
        if isinstance(codec, Codec) and rec.encoded is not None:
            frames = rec.encoded.codes.shape[-1]
            if rec.encoded.segment_frames is None:
                frames = min(frames, valid_frames(rec.encoded.num_samples, codec.hop_length))
            codes = rec.encoded.codes[..., :frames].cpu().numpy().astype(np.int16)
            fields.update(frame_rate=codec.frame_rate, cardinality=codec.cardinality,
                          num_codebooks=codec.num_codebooks)
        info = codec.info()
        outcome = UnitOutcome(_unit(item, job, "ok", **fields, **common), [], decoded, codes,
                              variant_info=to_json(info) if info else None)
    scored = score_pair(reference, decoded, rate, metrics, max_delay_s=task.max_delay_s, source=job.spec)
    for (key, _), r in zip(job.metrics, scored, strict=True):
        outcome.results.append(ResultRow(key, job.unit_key, item.item_id, job.spec, r.metric, r.value, r.unit,
                                         r.reason, r.metric_version, r.library, r.library_version,
                                         to_json(r.preparation) if r.preparation else None, r.seconds))
    return outcome
