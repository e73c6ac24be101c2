"""Scoring one degraded signal against a prepared reference with a list of metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from evalkit import audio as audio_lib
from evalkit.metrics.prepare import AlignedBy, Degraded, Preparation, Reference, pair_delay, prepare
from evalkit.metrics.registry import Metric, MetricFailure
from evalkit.metrics.segments import (
    DEFAULT_SEGMENT_S,
    SEGMENT_ABOVE_S,
    aggregation,
    is_segmented,
    segment_bounds,
)
from evalkit.metrics.warmup import warm_up
from evalkit.native_memory import release_free_memory


@dataclass(frozen=True)
class MetricResult:
    """One value (or NaN plus ``reason``) with its unit and provenance.

    ``seconds`` covers preparation and computation for this pair, including an equal share of the pair's delay
    estimation for each metric that evalkit aligns; ``warmup_s`` the one-off warm-up this process paid before its
    first use of the metric (0 afterwards), not included in ``seconds``.
    """

    metric: str
    value: float
    unit: str
    reason: str | None
    preparation: Preparation | None
    library: str
    library_version: str
    metric_version: str
    seconds: float
    warmup_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason is None


def _failed(metric: Metric, reason: str, prep: Preparation | None = None, seconds: float = 0.0) -> MetricResult:
    info = metric.info
    return MetricResult(info.name, math.nan, info.unit, reason, prep, info.library, info.library_version(),
                        info.version, seconds)


def score_pair(reference: Reference, degraded: np.ndarray | Degraded | audio_lib.FileSignal, degraded_rate: int,
               metrics: Sequence[Metric], *, max_delay_s: float = audio_lib.DEFAULT_MAX_DELAY_S,
               source: str = "degraded", segment_s: float | None = DEFAULT_SEGMENT_S,
               segment_above_s: float = SEGMENT_ABOVE_S) -> list[MetricResult]:
    """Every metric on (reference, degraded): one result per metric, failures as NaN with a reason.

    The degraded signal is resampled once per rate and its delay estimated once, shared by every metric. When
    no reliable delay is found and the pair is misaligned as given (:attr:`evalkit.audio.DelayEstimate.misaligned`),
    the metrics evalkit aligns are NaN with the reason (``no reliable delay within …``); metrics that align
    internally still run. A reference longer than ``segment_above_s`` seconds is scored in segments of at most
    ``segment_s`` seconds (see :mod:`evalkit.metrics.segments`; ``segment_s=None``: always whole). A degraded
    :class:`~evalkit.audio.FileSignal` at the reference's rate is read a segment at a time (a long decoded signal
    is never held whole), else whole.
    """
    segmented = bool(segment_s) and is_segmented(reference.samples.shape[1], reference.sample_rate, segment_above_s)
    try:
        reference.validate()
        if isinstance(degraded, audio_lib.FileSignal):
            degraded.validate(allow_silent=True)
            if not segmented or degraded.sample_rate != reference.sample_rate:
                degraded = Degraded(degraded.read(0, degraded.frames), degraded.sample_rate, degraded.source)
        elif not isinstance(degraded, Degraded):
            degraded = Degraded(degraded, degraded_rate, source)
        if isinstance(degraded, Degraded):
            audio_lib.validate(degraded.samples, degraded.source, allow_silent=True)  # a silent output is a result
    except audio_lib.AudioError as exc:
        return [_failed(m, str(exc)) for m in metrics]
    if segmented:
        return _score_segmented(reference, degraded, metrics, max_delay_s, segment_s)
    t0 = time.perf_counter()
    delay = pair_delay(reference, degraded, max_delay_s)
    return _score_whole(reference, degraded, metrics, delay, delay_s=time.perf_counter() - t0)


def _score_whole(reference: Reference, degraded: Degraded, metrics: Sequence[Metric],
                 delay: audio_lib.DelayEstimate, terms: dict[str, np.ndarray] | None = None,
                 delay_s: float = 0.0) -> list[MetricResult]:
    """Score a pair whose delay is known (its estimation took ``delay_s``, shared by the metrics evalkit aligns);
    with ``terms``, metrics with segment terms add theirs there (by name) instead of computing a value."""
    warmups = warm_up(metrics)
    aligned = sum(not m.info.aligns_internally for m in metrics)
    delay_share = delay_s / aligned if aligned else 0.0
    results = []
    for metric in metrics:
        info = metric.info
        t0 = time.perf_counter() - (0.0 if info.aligns_internally else delay_share)
        ref, deg, prep, key = prepare(reference, degraded, info, delay)
        if prep.aligned_by == AlignedBy.EVALKIT and delay.misaligned:  # a value on the unaligned pair is wrong
            results.append(_failed(metric, delay.misalignment(), prep))
            continue
        duration = prep.length / prep.rate
        if duration < info.min_duration_s:
            after = "(the shorter signal)" if prep.aligned_by == AlignedBy.METRIC else "after alignment"
            results.append(_failed(metric, f"too short for {info.name}: {duration:.3f} s {after}, "
                                           f"need {info.min_duration_s:.3f} s", prep))
            continue
        if info.needs_text and not reference.text:
            results.append(_failed(metric, f"no transcript for {reference.source}: {info.name} needs the "
                                           f"item's text (manifest column `text`, or `evalkit score --text`)",
                                   prep))
            continue
        extra = {"rate": prep.rate} if info.fallback_rates or metric.wants_rate else {}
        if info.needs_text:
            extra["text"] = reference.text
        try:
            if terms is not None and metric.has_segment_terms:
                terms[info.name] = terms.get(info.name, 0.0) + metric.segment_terms(ref, deg)
                value = math.nan  # the value comes from the sums of every segment
            else:
                value = metric.compute(ref, deg, reference.cache(key), **extra)
            reason = None if np.isfinite(value) or terms is not None and metric.has_segment_terms else \
                f"{info.name} returned {value}"
        except MetricFailure as exc:
            value, reason = math.nan, str(exc)
        except ImportError:  # an optional library is missing: the other metrics still run
            value, reason = math.nan, f"unavailable: pip install {info.library}"
        except Exception as exc:  # noqa: BLE001 - any metric error is NaN + its type and message
            value, reason = math.nan, f"{info.name}: {type(exc).__name__}: {exc}"
        results.append(MetricResult(info.name, value if reason is None else math.nan, info.unit, reason, prep,
                                    info.library, info.library_version(), info.version, time.perf_counter() - t0,
                                    warmups.get(info.name, 0.0)))
    return results


def _score_segmented(reference: Reference, degraded: Degraded | audio_lib.FileSignal, metrics: Sequence[Metric],
                     max_delay_s: float, segment_s: float) -> list[MetricResult]:
    """Score a long pair segment by segment (delay from the first segment) and combine each metric's values."""
    rate = reference.sample_rate
    ref = reference.samples
    if isinstance(degraded, audio_lib.FileSignal):  # at the reference's rate (score_pair checked)
        read, degraded_samples = degraded.read, degraded.frames
    else:
        whole = degraded.at(rate)
        read, degraded_samples = (lambda start, end: whole[:, start:end]), whole.shape[1]
    first = round(segment_s * rate)
    t0 = time.perf_counter()
    estimate = pair_delay(Reference(ref[:, :first], rate, reference.source), Degraded(read(0, first), rate),
                          max_delay_s)
    # the shifted pair, as audio_lib.align cuts it: segment k is ref[r0 + a : r0 + b] against deg[d0 + a : d0 + b]
    r0, d0 = (0, estimate.samples) if estimate.samples >= 0 else (-estimate.samples, 0)
    length = max(0, min(ref.shape[1] - r0, degraded_samples - d0))
    fixed = replace(estimate, samples=0)  # the segments are cut from the shifted pair
    delay_s = time.perf_counter() - t0  # charged to the first segment
    terms: dict[str, np.ndarray] = {}
    per_segment: list[list[MetricResult]] = []
    bounds = segment_bounds(length, rate, segment_s)
    for start, end in bounds:
        piece = Reference(ref[:, r0 + start:r0 + end], rate, reference.source, text=reference.text)
        per_segment.append(_score_whole(piece, Degraded(read(d0 + start, d0 + end), rate, degraded.source), metrics,
                                        fixed, terms, delay_s if start == bounds[0][0] else 0.0))
        release_free_memory()  # the segment's temporaries: resident size stays that of one segment
    return [_combine(metric, [seg[i] for seg in per_segment], terms.get(metric.info.name), estimate, segment_s,
                     ref.shape[1], degraded_samples, rate)
            for i, metric in enumerate(metrics)]


def _combine(metric: Metric, parts: list[MetricResult], terms: np.ndarray | None, delay: audio_lib.DelayEstimate,
             segment_s: float, reference_samples: int, degraded_samples: int, rate: int) -> MetricResult:
    """One metric's value over the whole pair from its segment results (see :mod:`evalkit.metrics.segments`)."""
    info, rule = metric.info, aggregation(metric)
    preps = [p.preparation for p in parts if p.preparation is not None]
    seconds = sum(p.seconds for p in parts)
    failed = [p for p in parts if not p.ok]
    if terms is not None and not failed:
        try:
            value, reason = metric.from_segment_terms(terms), None
        except MetricFailure as exc:
            value, reason = math.nan, str(exc)
    elif len(failed) == len(parts) or terms is not None:
        index = next(i for i, p in enumerate(parts, 1) if not p.ok)
        value, reason = math.nan, f"segment {index} of {len(parts)} ({segment_s:g} s each at most): {failed[0].reason}"
    else:
        weights = [p.preparation.length if p.preparation else 0 for p in parts if p.ok]
        values = [p.value for p in parts if p.ok]
        value, reason = float(np.average(values, weights=weights)) if sum(weights) else math.nan, None
        if not sum(weights):
            reason = f"{info.name}: no segment with samples"
    prep = None
    if preps:
        scale = preps[0].rate / rate
        prep = replace(preps[0], delay_samples=round(delay.samples * scale),
                       length=sum(p.length for p in preps),
                       trimmed_reference=round(reference_samples * scale) - sum(p.length for p in preps),
                       trimmed_degraded=round(degraded_samples * scale) - sum(p.length for p in preps),
                       reference_samples=round(reference_samples * scale),
                       degraded_samples=round(degraded_samples * scale), segment_s=float(segment_s),
                       segments=len(parts), aggregation=str(rule), segments_failed=len(failed))
    return MetricResult(info.name, value if reason is None else math.nan, info.unit, reason, prep, info.library,
                        info.library_version(), info.version, seconds, sum(p.warmup_s for p in parts))


def preparation_notes(reference_s: float, degraded_s: float, results: Sequence[MetricResult]) -> list[str]:
    """What was done to the pair's lengths and timing, one line per kind of treatment (for ``evalkit score``).

    Lists a length mismatch, the delay estimate when it was not used or found an inverted signal, the shift
    and trims evalkit applied (grouped by rate), and the metrics that got the whole signals.
    """
    preps = [(r.metric, r.preparation) for r in results if r.preparation is not None]
    if not preps:
        return []
    lines = []
    if abs(reference_s - degraded_s) > 0.5e-3:
        lines.append(f"lengths differ: reference {reference_s:.4f} s, degraded {degraded_s:.4f} s "
                     f"({1000 * (degraded_s - reference_s):+.1f} ms)")
    first = preps[0][1]
    if first.delay_note:
        lines.append(f"delay: {first.delay_note}")
    if first.polarity < 0:
        lines.append(f"the degraded signal is polarity-inverted (cross-correlation peak {-first.delay_confidence:.3f})")
    groups: dict[tuple, list[str]] = {}
    for name, p in preps:
        if p.aligned_by == AlignedBy.METRIC:
            groups.setdefault(("metric",), []).append(name)
        elif p.delay_samples or p.trimmed_reference or p.trimmed_degraded:
            groups.setdefault((p.rate, p.delay_samples, p.trimmed_reference, p.trimmed_degraded), []).append(name)
    for key, names in groups.items():
        if key == ("metric",):
            lines.append(f"{', '.join(names)}: align internally; given both whole signals, not shifted or trimmed")
            continue
        rate, delay, trim_ref, trim_deg = key
        lines.append(f"{', '.join(names)}: at {rate} Hz shifted by {delay} samples ({1000 * delay / rate:.2f} ms), "
                     f"trimmed {trim_ref} reference and {trim_deg} degraded samples")
    return lines
