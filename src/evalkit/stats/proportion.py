"""A proportion of successes: the exact binomial test (scipy ``binomtest``) and the Wilson score interval
(statsmodels ``proportion_confint``)."""

from __future__ import annotations

import math


def binomial_p(successes: int, n: int, alternative: str = "two-sided", p0: float = 0.5) -> float:
    """Exact binomial test of ``successes`` in ``n`` trials against success probability ``p0``
    (``alternative``: ``two-sided``, ``greater`` or ``less``); NaN when n = 0.

    >>> binomial_p(9, 10, "greater")  # (C(10,9) + C(10,10)) / 2^10 = 11/1024
    0.0107421875
    >>> binomial_p(9, 10)  # symmetric: 2 · 11/1024
    0.021484375
    """
    from scipy import stats

    if n == 0:
        return math.nan
    return float(stats.binomtest(successes, n, p0, alternative=alternative).pvalue)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``successes / n``:
    ``(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)``, within [0, 1]; NaN bounds when n = 0.

    >>> lo, hi = wilson_interval(8, 10)  # z = 1.96: (0.8 + 0.1921 ± 0.3136) / 1.3841
    >>> round(lo, 4), round(hi, 4)
    (0.4902, 0.9433)
    """
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)
