"""Preparing a (reference, degraded) pair the same way for every metric.

Both signals are resampled with the one resampler to the metric's declared rate, the channel policy is
applied, the degraded signal's delay is compensated (estimated once per pair, ±50 ms) and both are trimmed
to their common length. :class:`Preparation` records all of it next to the value. A :class:`Reference`
keeps each rate's resampled reference, so scoring many codec variants against one item resamples it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit import audio as audio_lib
from evalkit.metrics.registry import ChannelMode, MetricInfo


@dataclass(frozen=True)
class Preparation:
    """What was done to the pair before the metric saw it."""

    rate: int
    reference_rate: int
    degraded_rate: int
    resampler: str | None
    channels: str
    delay_samples: int
    length: int
    trimmed_reference: int
    trimmed_degraded: int

    @property
    def delay_ms(self) -> float:
        return 1000.0 * self.delay_samples / self.rate


@dataclass
class Reference:
    """A reference signal, its per-rate resampled copies and per-metric analysis caches.

    ``text`` is the item's transcript, when known (for metrics whose ``info.needs_text`` is set).
    """

    samples: np.ndarray
    sample_rate: int
    source: str = "reference"
    text: str | None = None
    _resampled: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _caches: dict[Any, dict] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.samples = audio_lib.as_2d(self.samples)

    def at(self, rate: int) -> np.ndarray:
        if rate not in self._resampled:
            self._resampled[rate] = audio_lib.resample(self.samples, self.sample_rate, rate)
        return self._resampled[rate]

    def cache(self, key: Any) -> dict:
        return self._caches.setdefault(key, {})


def channel_handling(ref: np.ndarray, deg: np.ndarray, mode: ChannelMode) -> tuple[np.ndarray, np.ndarray, str]:
    if mode is ChannelMode.MONO:
        if ref.shape[0] == deg.shape[0] == 1:
            return ref, deg, "mono"
        label = "mono" if ref.shape[0] == deg.shape[0] == 1 else f"downmix {ref.shape[0]}/{deg.shape[0]}->1"
        return ref.mean(axis=0, keepdims=True), deg.mean(axis=0, keepdims=True), label
    if ref.shape[0] != deg.shape[0]:
        return (ref.mean(axis=0, keepdims=True), deg.mean(axis=0, keepdims=True),
                f"downmix (channel mismatch {ref.shape[0]} vs {deg.shape[0]})")
    return ref, deg, "per-channel" if ref.shape[0] > 1 else "mono"


def pair_delay(reference: Reference, degraded: np.ndarray, degraded_rate: int,
               max_delay_s: float = audio_lib.DEFAULT_MAX_DELAY_S) -> int:
    """Delay of ``degraded`` in samples at the reference's rate (estimated once per pair)."""
    deg = audio_lib.resample(degraded, degraded_rate, reference.sample_rate)
    return audio_lib.estimate_delay(reference.samples, deg, reference.sample_rate, max_delay_s)


def prepare(reference: Reference, degraded: np.ndarray, degraded_rate: int, info: MetricInfo,
            delay_at_reference_rate: int = 0) -> tuple[np.ndarray, np.ndarray, Preparation, tuple]:
    """Resample, apply channel policy, align and trim. Returns both signals, the record, and a key that
    identifies the prepared reference (for per-reference analysis caches)."""
    rate = info.sample_rate or reference.sample_rate
    ref = reference.at(rate)
    deg = audio_lib.resample(degraded, degraded_rate, rate)
    ref, deg, channels = channel_handling(ref, deg, info.channels)
    resampled = reference.sample_rate != rate or degraded_rate != rate
    if info.aligns_internally:  # whole signals: the reference (and its cache key) is the same for every variant
        length = min(ref.shape[1], deg.shape[1])
        prep = Preparation(rate=rate, reference_rate=reference.sample_rate, degraded_rate=degraded_rate,
                           resampler=audio_lib.RESAMPLER if resampled else None, channels=channels,
                           delay_samples=0, length=length, trimmed_reference=0, trimmed_degraded=0)
        return ref, deg, prep, (info.name, rate, channels, 0, ref.shape[1])
    delay = round(delay_at_reference_rate * rate / reference.sample_rate)
    ref_a, deg_a, alignment = audio_lib.align(ref, deg, rate, delay=delay)
    prep = Preparation(rate=rate, reference_rate=reference.sample_rate, degraded_rate=degraded_rate,
                       resampler=audio_lib.RESAMPLER if resampled else None, channels=channels,
                       delay_samples=alignment.delay_samples, length=alignment.length,
                       trimmed_reference=alignment.trimmed_reference, trimmed_degraded=alignment.trimmed_degraded)
    ref_start = -delay if delay < 0 else 0
    key = (info.name, rate, channels, ref_start, alignment.length)
    return ref_a, deg_a, prep, key
