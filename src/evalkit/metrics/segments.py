"""Scoring long pairs segment by segment, so memory does not grow with the item's length.

A pair whose reference is longer than ``segment_s`` seconds is scored in consecutive segments of at most that
length (``n = ceil(length / segment_s)`` segments of equal length, so no tiny tail): the delay is estimated once,
on the first segment, the whole degraded signal is shifted by it, and every segment pair is scored like a short
pair with that delay. Each metric's segment values are then combined by its :class:`Aggregation`:

- ``exact-sums``: the metric adds up per-segment sums (:meth:`~evalkit.metrics.Metric.segment_terms`) and computes
  its value from the totals, which equals its whole-signal value (SI-SDR from ``Σs``, ``Σŝ``, ``Σs²``, ``Σsŝ``,
  ``Σŝ²``);
- ``duration-mean``: the mean of the segment values weighted by their durations (ViSQOL, PESQ, STOI, mel and
  STFT distances: their frame means cannot be split exactly at segment edges).

The rule and the segment length are recorded in each value's :class:`~evalkit.metrics.Preparation`
(``segment_s``, ``segments``, ``aggregation``) and are part of its result key
(:func:`evalkit.runner.plan.result_key`). Pairs not longer than ``segment_s`` are scored whole, as before.
"""

from __future__ import annotations

import enum
import math

from evalkit.metrics.registry import Metric

#: Segment length (s) above which pairs are scored in segments: bounded memory for ViSQOL, STFTs and the delay
#: search (one 30 s segment at 48 kHz costs ViSQOL a few hundred MB).
DEFAULT_SEGMENT_S = 30.0


class Aggregation(enum.StrEnum):
    EXACT_SUMS = "exact-sums"  # the whole-signal value, from per-segment sums
    DURATION_MEAN = "duration-mean"  # segment values weighted by their durations


def aggregation(metric: Metric) -> Aggregation:
    """How ``metric``'s segment values are combined into one value."""
    return Aggregation.EXACT_SUMS if metric.has_segment_terms else Aggregation.DURATION_MEAN


def is_segmented(samples: int, sample_rate: int, segment_s: float | None) -> bool:
    """Whether a reference of ``samples`` at ``sample_rate`` is scored in segments of ``segment_s`` seconds."""
    return bool(segment_s) and samples > round(segment_s * sample_rate)


def segment_bounds(length: int, sample_rate: int, segment_s: float) -> list[tuple[int, int]]:
    """``[start, end)`` sample bounds of ``ceil(length / segment)`` equal consecutive segments covering ``length``.

    >>> segment_bounds(10, 1, 4.0)
    [(0, 3), (3, 7), (7, 10)]
    """
    count = max(1, math.ceil(length / round(segment_s * sample_rate)))
    edges = [round(k * length / count) for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def segmentation_key(metric: Metric, segment_s: float) -> list[str | float]:
    """What a segmented value adds to its result key: the segment length and the aggregation rule."""
    return [float(segment_s), str(aggregation(metric))]
