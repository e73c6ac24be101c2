"""Bjøntegaard deltas between two rate–quality curves (VCEG-M33, with PCHIP instead of a cubic fit).

Each curve is a few (bitrate, quality) points of one codec family. Both deltas compare a *test* curve with an
*anchor* curve over the range where the two overlap:

* **BD-rate** — log-bitrate as a function of quality, ``L(q) = ln R(q)``, interpolated with a monotone piecewise
  cubic (PCHIP, Fritsch–Carlson) through the points sorted by quality; the mean difference
  ``Δ = (∫ L_test − ∫ L_anchor) / (q_hi − q_lo)`` over the common quality range ``[q_lo, q_hi]`` gives
  ``BD-rate = (e^Δ − 1) × 100 %``: the average bitrate the test codec needs, relative to the anchor, for the
  same quality. Negative = the test codec needs less bitrate. Because it compares bitrates at *equal* metric
  values, the sign convention is the same whether the metric is higher- or lower-is-better.
* **BD-quality** — quality as a function of log-bitrate, ``Q(ln R)``, interpolated the same way, mean difference
  ``(∫ Q_test − ∫ Q_anchor) / (ln R_hi − ln R_lo)`` over the common log-bitrate range, in the metric's unit:
  test minus anchor at equal bitrate. For a lower-is-better metric (mel distance) a negative BD-quality means
  the test codec is better.

Undefined cases (fewer than 2 points, no overlap, repeated abscissae, non-finite or non-positive values) give
NaN plus the reason, never a sentinel.

>>> anchor_rates, anchor_q = [8, 16, 32, 64], [1.0, 2.0, 3.0, 4.0]
>>> bd_rate(anchor_rates, anchor_q, [4, 8, 16, 32], [1.0, 2.0, 3.0, 4.0]).value  # same quality at half the rate
-50.0
>>> bd_rate(anchor_rates, anchor_q, [16, 32, 64, 128], [1.0, 2.0, 3.0, 4.0]).value  # twice the rate
100.0
>>> bd_quality(anchor_rates, anchor_q, [8, 16, 32, 64], [1.5, 2.5, 3.5, 4.5]).value  # 0.5 better everywhere
0.5
>>> bd_rate([8, 16], [1.0, 2.0], [8, 16], [5.0, 6.0]).reason
'no overlap: quality ranges [1, 2] (anchor) and [5, 6] (test) do not intersect'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

MIN_POINTS = 2


@dataclass(frozen=True)
class Delta:
    """One Bjøntegaard delta: ``value`` (NaN when undefined) and, then, the ``reason``."""

    value: float
    reason: str | None = None

    @classmethod
    def undefined(cls, reason: str) -> Delta:
        return cls(math.nan, reason)


class _Undefined(Exception):
    """Internal: the delta is undefined for the reason given."""


def _curve(rates: Sequence[float], quality: Sequence[float], who: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rates, dtype=float)
    q = np.asarray(quality, dtype=float)
    if r.shape != q.shape or r.ndim != 1:
        raise ValueError(f"{who}: rates and quality must be 1-d of equal length, got {r.shape} and {q.shape}")
    keep = np.isfinite(r) & np.isfinite(q)
    r, q = r[keep], q[keep]
    if len(r) < MIN_POINTS:
        raise _Undefined(f"{who} has {len(r)} rate-quality point{'s' if len(r) != 1 else ''} with finite values, "
                         f"need at least {MIN_POINTS}")
    if np.any(r <= 0):
        raise _Undefined(f"{who} has a non-positive bitrate")
    return np.log(r), q


def _mean_gap(x_anchor: np.ndarray, y_anchor: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              axis: str, labels: tuple[str, str]) -> float:
    """Mean of ``y_test(x) − y_anchor(x)`` over the common x range, both PCHIP-interpolated."""
    lo = max(x_anchor.min(), x_test.min())
    hi = min(x_anchor.max(), x_test.max())
    if not hi > lo:
        shown = (lambda v: f"{math.exp(v):g}") if axis == "bitrate" else (lambda v: f"{v:g}")
        raise _Undefined(f"no overlap: {axis} ranges [{shown(x_anchor.min())}, {shown(x_anchor.max())}] "
                         f"({labels[0]}) and [{shown(x_test.min())}, {shown(x_test.max())}] ({labels[1]}) "
                         "do not intersect")
    integrals = []
    for x, y, who in ((x_anchor, y_anchor, labels[0]), (x_test, y_test, labels[1])):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        if np.any(np.diff(x) == 0):
            raise _Undefined(f"{who} has two points at the same {axis}; {axis} must be strictly monotone")
        integrals.append(PchipInterpolator(x, y, extrapolate=False).integrate(lo, hi))
    return float((integrals[1] - integrals[0]) / (hi - lo))


def bd_rate(anchor_rates: Sequence[float], anchor_quality: Sequence[float],
            test_rates: Sequence[float], test_quality: Sequence[float],
            labels: tuple[str, str] = ("anchor", "test")) -> Delta:
    """Bjøntegaard delta rate of the test curve against the anchor curve.

    Args:
        anchor_rates: bitrates of the anchor's points (any positive unit, the same for both curves).
        anchor_quality: the metric's value at each anchor point.
        test_rates: bitrates of the test curve's points.
        test_quality: the metric's value at each test point.
        labels: names of the anchor and test curves in reasons (e.g. the families' names).

    Returns:
        :class:`Delta` in percent: the average bitrate change of the test codec relative to the anchor at equal
        quality (−50 = half the bitrate), rounded to 1e-9; NaN plus the reason when undefined.

    Raises:
        ValueError: rates and quality of a curve differ in shape.
    """
    try:
        la, qa = _curve(anchor_rates, anchor_quality, labels[0])
        lt, qt = _curve(test_rates, test_quality, labels[1])
        gap = _mean_gap(qa, la, qt, lt, "quality", labels)
    except _Undefined as exc:
        return Delta.undefined(str(exc))
    return Delta(round((math.exp(gap) - 1) * 100, 9))


def bd_quality(anchor_rates: Sequence[float], anchor_quality: Sequence[float],
               test_rates: Sequence[float], test_quality: Sequence[float],
               labels: tuple[str, str] = ("anchor", "test")) -> Delta:
    """Bjøntegaard delta quality (test minus anchor at equal bitrate) in the metric's unit.

    Args:
        anchor_rates, anchor_quality, test_rates, test_quality, labels: as for :func:`bd_rate`.

    Returns:
        :class:`Delta` in the metric's unit, rounded to 1e-9 (positive = the test curve has the higher metric
        value, which is worse for a lower-is-better metric); NaN plus the reason when undefined.

    Raises:
        ValueError: rates and quality of a curve differ in shape.
    """
    try:
        la, qa = _curve(anchor_rates, anchor_quality, labels[0])
        lt, qt = _curve(test_rates, test_quality, labels[1])
        gap = _mean_gap(la, qa, lt, qt, "bitrate", labels)
    except _Undefined as exc:
        return Delta.undefined(str(exc))
    return Delta(round(gap, 9))
