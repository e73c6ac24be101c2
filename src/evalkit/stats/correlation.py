"""Correlation between listening scores and an objective metric, with confidence intervals: pure functions.

Pearson's r gets the Fisher-z interval (``atanh r ± z / sqrt(n − 3)``); Spearman's ρ the same transform with
Bonett & Wright's (2000) standard error ``sqrt((1 + ρ²/2) / (n − 3))``. Fewer than 4 finite pairs, or a constant
input, give NaN with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with its 95 % (or other) interval over ``n`` pairs."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    reason: str | None = None


def _pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _fisher_interval(r: float, n: int, se_scale: float, confidence: float) -> tuple[float, float]:
    if abs(r) >= 1.0:
        return r, r
    z = stats.norm.ppf(0.5 + confidence / 2)
    half = z * se_scale / math.sqrt(n - 3)
    return math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)


def _undefined(x: np.ndarray, y: np.ndarray) -> str | None:
    if len(x) < 4:
        return f"{len(x)} finite pairs, need at least 4 for an interval"
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return "one of the two is constant"
    return None


def pearson(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Correlation:
    """Pearson's r with its Fisher-z interval; non-finite pairs are dropped.

    >>> c = pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    >>> round(c.value, 4), round(c.ci_low, 3), round(c.ci_high, 3), c.n
    (0.7746, -0.34, 0.984, 5)
    """
    x, y = _pairs(x, y)
    if reason := _undefined(x, y):
        return Correlation(math.nan, math.nan, math.nan, len(x), reason)
    r = float(np.corrcoef(x, y)[0, 1])
    return Correlation(r, *_fisher_interval(r, len(x), 1.0, confidence), len(x))


def spearman(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Correlation:
    """Spearman's ρ (Pearson's r of mid-ranks) with the Bonett–Wright interval.

    >>> c = spearman([1, 2, 3, 4, 5], [1, 3, 2, 5, 4])
    >>> round(c.value, 2), c.n
    (0.8, 5)
    """
    x, y = _pairs(x, y)
    if reason := _undefined(x, y):
        return Correlation(math.nan, math.nan, math.nan, len(x), reason)
    r = float(np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1])
    return Correlation(r, *_fisher_interval(r, len(x), math.sqrt(1 + r * r / 2), confidence), len(x))
