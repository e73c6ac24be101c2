"""Scoring one degraded signal against a prepared reference with a list of metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evalkit import audio as audio_lib
from evalkit.metrics.prepare import AlignedBy, Degraded, Preparation, Reference, pair_delay, prepare
from evalkit.metrics.registry import Metric, MetricFailure
from evalkit.metrics.warmup import warm_up


@dataclass(frozen=True)
class MetricResult:
    """One value (or NaN plus ``reason``) with its unit and provenance.

    ``seconds`` covers preparation and computation for this pair; ``warmup_s`` the one-off warm-up this
    process paid before its first use of the metric (0 afterwards), not included in ``seconds``.
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


def score_pair(reference: Reference, degraded: np.ndarray | Degraded, degraded_rate: int,
               metrics: Sequence[Metric], *, max_delay_s: float = audio_lib.DEFAULT_MAX_DELAY_S,
               source: str = "degraded") -> list[MetricResult]:
    """Every metric on (reference, degraded): one result per metric, failures as NaN with a reason.

    The degraded signal is resampled once per rate and its delay estimated once, shared by every metric. When
    no reliable delay is found and the pair is misaligned as given (:attr:`evalkit.audio.DelayEstimate.misaligned`),
    the metrics evalkit aligns are NaN with the reason (``no reliable delay within …``); metrics that align
    internally still run.
    """
    if not isinstance(degraded, Degraded):
        degraded = Degraded(degraded, degraded_rate, source)
    try:
        audio_lib.validate(reference.samples, reference.source)
        audio_lib.validate(degraded.samples, degraded.source, allow_silent=True)  # a silent output is a result
    except audio_lib.AudioError as exc:
        return [_failed(m, str(exc)) for m in metrics]
    warmups = warm_up(metrics)
    delay = pair_delay(reference, degraded, max_delay_s)
    results = []
    for metric in metrics:
        info = metric.info
        t0 = time.perf_counter()
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
            value = metric.compute(ref, deg, reference.cache(key), **extra)
            reason = None if np.isfinite(value) else f"{info.name} returned {value}"
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
