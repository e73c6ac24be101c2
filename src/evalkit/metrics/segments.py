"""Scoring long pairs segment by segment, so memory does not grow with the item's length.

A pair whose reference is longer than :data:`SEGMENT_ABOVE_S` (30 s) is scored in consecutive segments of at most
``segment_s`` (:data:`DEFAULT_SEGMENT_S`, 10 s; ``n = ceil(length / segment_s)`` segments of equal length, so no
tiny tail): the delay is estimated once,
on the first segment, the whole degraded signal is shifted by it, and every segment pair is scored like a short
pair with that delay. Each metric's segment values are then combined by its :class:`Aggregation`:

- ``exact-sums``: the metric adds up per-segment sums (:meth:`~evalkit.metrics.Metric.segment_terms`) and computes
  its value from the totals, which equals its whole-signal value (SI-SDR from ``Σs``, ``Σŝ``, ``Σs²``, ``Σsŝ``,
  ``Σŝ²``);
- ``duration-mean``: the mean of the segment values weighted by their durations (ViSQOL, PESQ, STOI, mel and
  STFT distances: their frame means cannot be split exactly at segment edges).

The rule and the segment length are recorded in each value's :class:`~evalkit.metrics.Preparation`
(``segment_s``, ``segments``, ``aggregation``) and are part of its result key
(:func:`evalkit.runner.plan.result_key`). Pairs of 30 s or less are scored whole, as before.
"""

from __future__ import annotations

import enum
import math

from evalkit.metrics.registry import Metric

#: Pairs longer than this many seconds are scored in segments; shorter ones whole, with the values they always had.
SEGMENT_ABOVE_S = 30.0
#: The longest segment (s). Scoring holds one segment's temporaries at a time (ViSQOL's spectrograms and patches,
#: the STFTs, the delay search): at 44.1 kHz with every applicable metric a worker peaked 0.3 GB higher with
#: 30 s segments than with 10 s ones.
DEFAULT_SEGMENT_S = 10.0


class Aggregation(enum.StrEnum):
    EXACT_SUMS = "exact-sums"  # the whole-signal value, from per-segment sums
    DURATION_MEAN = "duration-mean"  # segment values weighted by their durations


def aggregation(metric: Metric) -> Aggregation:
    """How ``metric``'s segment values are combined into one value."""
    return Aggregation.EXACT_SUMS if metric.has_segment_terms else Aggregation.DURATION_MEAN


def is_segmented(samples: int, sample_rate: int, above_s: float | None = SEGMENT_ABOVE_S) -> bool:
    """Whether a reference of ``samples`` at ``sample_rate`` is longer than ``above_s`` seconds, so scored in
    segments (``None``: never)."""
    return bool(above_s) and samples > round(above_s * sample_rate)


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
