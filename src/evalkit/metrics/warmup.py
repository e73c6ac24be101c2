"""Once-per-process warm-up of metrics, timed apart from the items they score.

The first call of a metric in a process pays one-off costs that say nothing about the item: numba's JIT
compilation (or loading its on-disk cache) in ViSQOL, ViSQOL's SVR or lattice model, the mel filterbanks,
torch's first STFT. :func:`warm_up` runs each metric once on a short synthetic pair and
returns those seconds, so :func:`evalkit.metrics.score_pair` records them as ``warmup_s`` and not in the
first item's ``seconds``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

import numpy as np

from evalkit.metrics.registry import Metric

WARMUP_SECONDS = 1.0
_WARM: set[str] = set()


def synthetic_pair(sample_rate: int, seconds: float = WARMUP_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """A seeded speech-like pair ``[1, samples]``: a 4 Hz-modulated harmonic tone and a noisy copy."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 300, 450, 900, 1800), start=1))
    ref = (0.2 * tone * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)[None]
    noise = np.random.default_rng(0).standard_normal(ref.shape).astype(np.float32)
    return ref, (ref + 0.01 * noise).astype(np.float32)


def warm_up(metrics: Iterable[Metric]) -> dict[str, float]:
    """Run every metric not yet warm in this process once; returns the seconds spent per metric.

    A metric that fails on the synthetic pair (or whose library is missing) counts as warm: its real call
    reports the failure.
    """
    spent = {}
    for metric in metrics:
        info = metric.info
        if info.name in _WARM:
            continue
        _WARM.add(info.name)
        rate = info.sample_rate or 44_100
        seconds = getattr(metric, "warmup_seconds", WARMUP_SECONDS)  # a metric may know its cheapest length
        ref, deg = synthetic_pair(rate, max(seconds, 1.2 * info.min_duration_s))
        extra: dict = {"rate": rate} if info.fallback_rates or metric.wants_rate else {}
        if info.needs_text:
            extra["text"] = "warm up"
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):  # any failure here is the real call's to report, with its reason
            metric.compute(ref, deg, {}, **extra)
        spent[info.name] = time.perf_counter() - t0
    return spent
