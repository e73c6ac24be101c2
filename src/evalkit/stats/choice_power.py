"""Panel-size planning for AB and ABX tests: power of the group test that ``listen analyze`` runs on choices.

Answers are nested in listeners, so the group test runs on one share per listener: AB, a two-sided one-sample t
test of the shares against 1/2; ABX, the one-sided (greater) test. When every listener has the same share the
t test is undefined and the exact sign-flip test of the shares is used (p = 2/2^n two-sided, 1/2^n one-sided,
1 when the shares sit at 1/2 or, for ABX, below it). :func:`share_test_p` is that test for one panel;
:func:`choice_power` simulates panels in which each listener gives ``answers`` decisive answers, each with
probability ``preference`` for the same side (AB) or of a correct identification (ABX). Draws are seeded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MAX_LISTENERS = 200


def share_test_p(shares: Sequence[float], abx: bool = False) -> tuple[float, str]:
    """(p, test name) of the group test over listeners' shares against 1/2 (NaN with fewer than 2 shares)."""
    from scipy import stats

    x = np.asarray(shares, dtype=float)
    if len(x) < 2:
        return math.nan, ""
    if float(x.std()) == 0.0:
        d = float(x[0]) - 0.5
        p = 1.0 if d == 0 or (abx and d < 0) else (1.0 if abx else 2.0) / 2 ** len(x)
        return p, "sign-flip over listeners' shares (all listeners had the same share)"
    alternative = "greater" if abx else "two-sided"
    p = float(stats.ttest_1samp(x, 0.5, alternative=alternative).pvalue)
    return p, f"one-sample t over listeners' shares vs 0.5 ({alternative})"


def _panel_p(shares: np.ndarray, abx: bool) -> np.ndarray:
    """:func:`share_test_p` for many panels at once (rows: panels, columns: listeners)."""
    from scipy import stats

    n = shares.shape[1]
    mean, sd = shares.mean(axis=1), shares.std(axis=1, ddof=1)
    constant = sd == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mean - 0.5) / (sd / math.sqrt(n))
    p = stats.t.sf(t, n - 1) if abx else 2 * stats.t.sf(np.abs(t), n - 1)
    d = mean - 0.5
    flat = np.where((d == 0) | (abx & (d < 0)), 1.0, (1.0 if abx else 2.0) / 2 ** n)
    return np.where(constant, flat, p)


def choice_power(listeners: int, answers: int, preference: float, *, abx: bool = False, alpha: float = 0.05,
                 sims: int = 4000, seed: int = 0) -> float:
    """Power (0–1) of the group test for ``listeners`` listeners giving ``answers`` decisive answers each.

    >>> choice_power(7, 1, 1.0)  # everyone prefers the same side: sign-flip p = 2/2**7 < 0.05
    1.0
    """
    if listeners < 2 or answers < 1 or not 0 <= preference <= 1 or sims < 1:
        raise ValueError(f"choice power needs listeners >= 2, answers >= 1, 0 <= preference <= 1 and sims >= 1; "
                         f"got listeners={listeners}, answers={answers}, preference={preference}, sims={sims}")
    rng = np.random.default_rng([seed, listeners, answers])
    shares = rng.binomial(answers, preference, size=(sims, listeners)) / answers
    return float(np.mean(_panel_p(shares, abx) < alpha))


def listeners_needed(answers: int, preference: float, *, target: float = 0.8, abx: bool = False,
                     alpha: float = 0.05, sims: int = 4000, seed: int = 0) -> int | None:
    """The smallest panel (2..:data:`MAX_LISTENERS`) whose :func:`choice_power` reaches ``target``; ``None`` if
    none does. Searched upwards, since simulated power is not exactly monotone in the panel size."""
    for n in range(2, MAX_LISTENERS + 1):
        if choice_power(n, answers, preference, abx=abx, alpha=alpha, sims=sims, seed=seed) >= target:
            return n
    return None
