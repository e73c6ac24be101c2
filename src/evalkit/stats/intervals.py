"""Student's t interval of a mean, and the median with its interquartile range: the one copy of each.

The t interval ``mean ± t(1 − α/2, n − 1) · s / √n`` (s: sample standard deviation, divisor n − 1) serves the
listening analysis (one number per assessor or listener) and the bootstrap's small samples
(:mod:`evalkit.stats.bootstrap`, 3 ≤ n < 6), one sample or a batch of samples at a time.

>>> iv = t_interval([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.3027, half-width 4.3027/√3 = 2.4841
>>> round(iv.mean, 4), round(iv.low, 4), round(iv.high, 4), iv.n
(2.0, -0.4841, 4.4841, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values with its confidence interval ``[low, high]``, all in the values' unit; NaN
    bounds with fewer than 2 values, a NaN mean with none."""

    mean: float
    low: float
    high: float
    n: int


def t_bounds(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student-t bounds of the mean of each row of ``samples``.

    Args:
        samples: ``[m, n]`` finite values, n ≥ 2.
        level: coverage of the interval.

    Returns:
        ``([m], [m])`` lower and upper bounds in the values' unit.
    """
    from scipy import stats

    n = samples.shape[1]
    half = stats.t.ppf(0.5 + level / 2, n - 1) * samples.std(axis=1, ddof=1) / math.sqrt(n)
    mean = samples.mean(axis=1)
    return mean - half, mean + half


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval ``mean ± t(1-α/2, n-1) · s/√n`` of one sample.

    Fewer than two values give NaN bounds (no values: a NaN mean too).
    """
    x = np.asarray(values, dtype=float).reshape(-1)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if n < 2:
        return Interval(float(x.mean()), math.nan, math.nan, n)
    low, high = t_bounds(x[None], confidence)
    return Interval(float(x.mean()), float(low[0]), float(high[0]), n)


def median_iqr(values: Sequence[float]) -> tuple[float, float]:
    """Median and interquartile range (linear interpolation between order statistics, numpy's default), in the
    values' unit; NaN for no values.

    >>> median_iqr([1, 2, 3, 4, 5])  # quartiles 2 and 4
    (3.0, 2.0)
    """
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return float(med), float(q3 - q1)
