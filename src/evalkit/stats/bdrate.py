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
NaN plus the reason, never a sentinel. Defined but doubtful cases keep their value and carry ``flags``, which
every output shows next to it (the ``bjontegaard`` package raises or warns in the same cases):

* a curve whose quality is not strictly monotonic in bitrate (more bits, worse quality somewhere), or two
  curves running in opposite directions: rate as a function of quality is then not a function;
* a common range under :data:`MIN_OVERLAP` (75 %) of the union of the two ranges, along the integration
  axis (quality for BD-rate, log-bitrate for BD-quality): the delta averages over a small part of the curves.

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
MIN_OVERLAP = 0.75  # common range / union of ranges, as the ``bjontegaard`` package's ``min_overlap``


@dataclass(frozen=True)
class Delta:
    """One Bjøntegaard delta: ``value`` (NaN when undefined) and, then, the ``reason``; ``flags`` say why a
    defined value is doubtful (never show it without them); ``overlap`` is the common share of the two ranges
    along the integration axis (NaN when undefined)."""

    value: float
    reason: str | None = None
    flags: tuple[str, ...] = ()
    overlap: float = math.nan

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

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


def _direction(log_rates: np.ndarray, quality: np.ndarray) -> tuple[int, str | None]:
    """+1 / −1 when quality rises / falls strictly with bitrate, else 0 and where it turns."""
    order = np.argsort(log_rates, kind="stable")
    r, q = np.exp(log_rates[order]), quality[order]
    steps = np.sign(np.diff(q))
    if np.all(steps > 0) or np.all(steps < 0):
        return int(steps[0]), None
    first = int(steps[0]) or 1
    turn = int(np.flatnonzero(steps != first)[0])
    return 0, (f"quality {q[turn]:.4g} at {r[turn]:.4g} then {q[turn + 1]:.4g} at {r[turn + 1]:.4g}")


def _overlap(x_anchor: np.ndarray, x_test: np.ndarray) -> float:
    union = max(x_anchor.max(), x_test.max()) - min(x_anchor.min(), x_test.min())
    common = min(x_anchor.max(), x_test.max()) - max(x_anchor.min(), x_test.min())
    return float(max(common, 0.0) / union) if union > 0 else 0.0


def _flags(la: np.ndarray, qa: np.ndarray, lt: np.ndarray, qt: np.ndarray, axis: str,
           labels: tuple[str, str]) -> tuple[tuple[str, ...], float]:
    """Flags of a defined delta (see the module doc) and the overlap share along ``axis``."""
    flags = []
    directions = []
    for rates, quality, who in ((la, qa, labels[0]), (lt, qt, labels[1])):
        direction, where = _direction(rates, quality)
        directions.append(direction)
        if not direction:
            flags.append(f"non-monotonic: {who}'s quality does not change one way with bitrate ({where})")
    if all(directions) and directions[0] != directions[1]:
        flags.append(f"non-monotonic: quality rises with bitrate for one of {labels[0]} and {labels[1]} and "
                     "falls for the other")
    overlap = _overlap(qa, qt) if axis == "quality" else _overlap(la, lt)
    if overlap < MIN_OVERLAP:
        flags.append(f"low overlap: the {axis} ranges share {100 * overlap:.0f} % of their union (under "
                     f"{100 * MIN_OVERLAP:.0f} %)")
    return tuple(flags), overlap


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
        quality (−50 = half the bitrate), rounded to 1e-9; NaN plus the reason when undefined; ``flags`` for a
        non-monotonic curve or a quality overlap under 75 %.

    Raises:
        ValueError: rates and quality of a curve differ in shape.
    """
    try:
        la, qa = _curve(anchor_rates, anchor_quality, labels[0])
        lt, qt = _curve(test_rates, test_quality, labels[1])
        gap = _mean_gap(qa, la, qt, lt, "quality", labels)
    except _Undefined as exc:
        return Delta.undefined(str(exc))
    flags, overlap = _flags(la, qa, lt, qt, "quality", labels)
    return Delta(round((math.exp(gap) - 1) * 100, 9), None, flags, overlap)


def bd_quality(anchor_rates: Sequence[float], anchor_quality: Sequence[float],
               test_rates: Sequence[float], test_quality: Sequence[float],
               labels: tuple[str, str] = ("anchor", "test")) -> Delta:
    """Bjøntegaard delta quality (test minus anchor at equal bitrate) in the metric's unit.

    The arguments are those of :func:`bd_rate`.

    Returns:
        :class:`Delta` in the metric's unit, rounded to 1e-9 (positive = the test curve has the higher metric
        value, which is worse for a lower-is-better metric); NaN plus the reason when undefined; ``flags`` for
        a non-monotonic curve or a log-bitrate overlap under 75 %.

    Raises:
        ValueError: rates and quality of a curve differ in shape.
    """
    try:
        la, qa = _curve(anchor_rates, anchor_quality, labels[0])
        lt, qt = _curve(test_rates, test_quality, labels[1])
        gap = _mean_gap(la, qa, lt, qt, "bitrate", labels)
    except _Undefined as exc:
        return Delta.undefined(str(exc))
    flags, overlap = _flags(la, qa, lt, qt, "bitrate", labels)
    return Delta(round(gap, 9), None, flags, overlap)
