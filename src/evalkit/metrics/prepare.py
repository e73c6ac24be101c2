"""Preparing a (reference, degraded) pair the same way for every metric.

Both signals are resampled with the one resampler to the metric's rate and the channel policy is applied. For
metrics that do not align by themselves, the degraded signal's delay is compensated (estimated once per pair,
within ±``max_delay_s`` or, failing that, a window of 10 % of the item up to 1 s, only when the cross-correlation
has a reliable peak) and both are trimmed to their common length;
metrics that align internally (ViSQOL, PESQ: ``info.aligns_internally``) get both whole signals, as their own
command-line tools would. :class:`Preparation` records all of it next to the value. A :class:`Reference` keeps
each rate's resampled reference, so scoring many codec variants against one item resamples it once; a
:class:`Degraded` does the same for one decoded signal and the metrics of one unit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit import audio as audio_lib
from evalkit.metrics.registry import ChannelMode, MetricInfo


class AlignedBy(enum.StrEnum):
    EVALKIT = "evalkit"  # delay compensated (when reliable) and trimmed by evalkit
    METRIC = "metric"  # whole signals passed on: the metric aligns them itself


@dataclass(frozen=True)
class Preparation:
    """What was done to the pair before the metric saw it.

    Attributes:
        delay_samples: shift applied to the degraded signal at ``rate`` (0 when the metric aligns by itself or
            no reliable delay was found).
        length: samples the metric saw (the shorter signal's length when the metric aligns by itself).
        reference_samples, degraded_samples: lengths at ``rate`` before any trimming.
        polarity, delay_confidence, delay_note: the pair's delay estimate (see
            :class:`evalkit.audio.DelayEstimate`); ``delay_note`` says why nothing was shifted.
        delay_search_s: the widest delay search window (±s) of the estimate.
        segment_s, segments, aggregation, segments_failed: for a pair scored in segments
            (:mod:`evalkit.metrics.segments`): the segment length, their count, the rule that combined their
            values and how many segments gave none; lengths and trims are then totals over the segments.
    """

    rate: int
    reference_rate: int
    degraded_rate: int
    resampler: str | None
    channels: str
    delay_samples: int
    length: int
    trimmed_reference: int
    trimmed_degraded: int
    aligned_by: AlignedBy = AlignedBy.EVALKIT
    reference_samples: int = 0
    degraded_samples: int = 0
    polarity: int = 1
    delay_confidence: float = 1.0
    delay_note: str | None = None
    delay_search_s: float = 0.0
    segment_s: float | None = None  # scored in segments of at most this many seconds (None: whole)
    segments: int = 1
    aggregation: str | None = None  # how segment values were combined (evalkit.metrics.segments.Aggregation)
    segments_failed: int = 0  # segments without a value (left out of a duration mean)

    @property
    def delay_ms(self) -> float:
        return 1000.0 * self.delay_samples / self.rate


def _resampled(copies: dict[int, np.ndarray], samples: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    if rate not in copies:
        copies[rate] = audio_lib.resample(samples, sample_rate, rate)
    return copies[rate]


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
    _valid: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.samples = audio_lib.as_2d(self.samples)

    def validate(self) -> None:
        """:func:`evalkit.audio.validate` the samples, once: every variant of an item is scored against them."""
        if not self._valid:
            audio_lib.validate(self.samples, self.source)
            self._valid = True

    def at(self, rate: int) -> np.ndarray:
        """The reference resampled to ``rate`` (computed once per rate)."""
        return _resampled(self._resampled, self.samples, self.sample_rate, rate)

    def cache(self, key: Any) -> dict:
        return self._caches.setdefault(key, {})


@dataclass
class Degraded:
    """A degraded (decoded) signal and its per-rate resampled copies, shared by the metrics of one unit."""

    samples: np.ndarray
    sample_rate: int
    source: str = "degraded"
    _resampled: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.samples = audio_lib.as_2d(self.samples)

    def at(self, rate: int) -> np.ndarray:
        """The degraded signal resampled to ``rate`` (computed once per rate)."""
        return _resampled(self._resampled, self.samples, self.sample_rate, rate)


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


def pair_delay(reference: Reference, degraded: Degraded,
               max_delay_s: float = audio_lib.DEFAULT_MAX_DELAY_S) -> audio_lib.DelayEstimate:
    """Delay of ``degraded`` in samples at the reference's rate (estimated once per pair)."""
    deg = degraded.at(reference.sample_rate)
    return audio_lib.estimate_delay(reference.samples, deg, reference.sample_rate, max_delay_s,
                                    reference_cache=reference.cache("delay"))


def prepare(reference: Reference, degraded: Degraded, info: MetricInfo,
            delay: audio_lib.DelayEstimate | None = None) -> tuple[np.ndarray, np.ndarray, Preparation, tuple]:
    """Resample, apply the channel policy and (unless the metric aligns internally) align and trim.

    Args:
        delay: the pair's delay estimate at the reference's rate (``None``: no shift).

    Returns:
        Both signals ``[channels, samples]`` at the metric's rate, the record, and a key that identifies the
        prepared reference (for per-reference analysis caches).
    """
    rate = info.rate_for(reference.sample_rate, degraded.sample_rate)
    ref, deg, channels = channel_handling(reference.at(rate), degraded.at(rate), info.channels)
    resampled = reference.sample_rate != rate or degraded.sample_rate != rate
    common = dict(rate=rate, reference_rate=reference.sample_rate, degraded_rate=degraded.sample_rate,
                  resampler=audio_lib.RESAMPLER if resampled else None, channels=channels,
                  reference_samples=ref.shape[1], degraded_samples=deg.shape[1])
    if delay is not None:
        common.update(polarity=delay.polarity, delay_confidence=round(delay.confidence, 4),
                      delay_note=delay.note, delay_search_s=delay.window_s)
    if info.aligns_internally:  # whole signals: the metric finds the delay and the common part itself
        prep = Preparation(delay_samples=0, length=min(ref.shape[1], deg.shape[1]), trimmed_reference=0,
                           trimmed_degraded=0, aligned_by=AlignedBy.METRIC, **common)
        return ref, deg, prep, (info.name, rate, channels, 0, ref.shape[1])
    shift = round(delay.samples * rate / reference.sample_rate) if delay is not None else 0
    ref_a, deg_a, alignment = audio_lib.align(ref, deg, rate, delay=shift)
    prep = Preparation(delay_samples=alignment.delay_samples, length=alignment.length,
                       trimmed_reference=alignment.trimmed_reference, trimmed_degraded=alignment.trimmed_degraded,
                       **common)
    ref_start = -shift if shift < 0 else 0
    return ref_a, deg_a, prep, (info.name, rate, channels, ref_start, alignment.length)
