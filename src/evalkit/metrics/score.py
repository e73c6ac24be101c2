"""Scoring one degraded signal against a prepared reference with a list of metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evalkit import audio as audio_lib
from evalkit.metrics.prepare import Preparation, Reference, pair_delay, prepare
from evalkit.metrics.registry import Metric, MetricFailure


@dataclass(frozen=True)
class MetricResult:
    """One value (or NaN plus ``reason``) with its unit and provenance."""

    metric: str
    value: float
    unit: str
    reason: str | None
    preparation: Preparation | None
    library: str
    library_version: str
    metric_version: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.reason is None


def _failed(metric: Metric, reason: str, prep: Preparation | None = None, seconds: float = 0.0) -> MetricResult:
    info = metric.info
    return MetricResult(info.name, math.nan, info.unit, reason, prep, info.library, info.library_version(),
                        info.version, seconds)


def score_pair(reference: Reference, degraded: np.ndarray, degraded_rate: int, metrics: Sequence[Metric],
               *, max_delay_s: float = audio_lib.DEFAULT_MAX_DELAY_S, source: str = "degraded") -> list[MetricResult]:
    """Every metric on (reference, degraded): one result per metric, failures as NaN with a reason."""
    degraded = audio_lib.as_2d(degraded)
    try:
        audio_lib.validate(reference.samples, reference.source)
        audio_lib.validate(degraded, source, allow_silent=True)  # a silent output is a (bad) result
    except audio_lib.AudioError as exc:
        return [_failed(m, str(exc)) for m in metrics]
    delay = pair_delay(reference, degraded, degraded_rate, max_delay_s)
    results = []
    for metric in metrics:
        info = metric.info
        t0 = time.perf_counter()
        ref, deg, prep, key = prepare(reference, degraded, degraded_rate, info, delay)
        duration = prep.length / prep.rate
        if duration < info.min_duration_s:
            results.append(_failed(metric, f"too short for {info.name}: {duration:.3f} s after alignment, "
                                           f"need {info.min_duration_s:.3f} s", prep))
            continue
        if info.needs_text and not reference.text:
            results.append(_failed(metric, f"no transcript for {reference.source}: {info.name} needs the "
                                           f"item's text (manifest column `text`, or `evalkit score --text`)",
                                   prep))
            continue
        try:
            cache = reference.cache(key)
            if info.needs_text:
                value = metric.compute(ref, deg, cache, text=reference.text)
            else:
                value = metric.compute(ref, deg, cache)
            reason = None if np.isfinite(value) else f"{info.name} returned {value}"
        except MetricFailure as exc:
            value, reason = math.nan, str(exc)
        except ImportError:  # an optional library is missing: the other metrics still run
            value, reason = math.nan, f"unavailable: pip install {info.library}"
        except Exception as exc:  # noqa: BLE001 - any metric error is NaN + its type and message
            value, reason = math.nan, f"{info.name}: {type(exc).__name__}: {exc}"
        results.append(MetricResult(info.name, value if reason is None else math.nan, info.unit, reason, prep,
                                    info.library, info.library_version(), info.version, time.perf_counter() - t0))
    return results
