"""AB and ABX statistics that respect nesting: answers are nested in listeners, so the group test runs on one
number per listener (their share), and each listener also gets an exact binomial test of their own answers.

AB: a listener's share is their preference for ``a`` among their decisive answers ("no preference" left out);
the group test is a two-sided one-sample t test of the listeners' shares against 1/2. ABX: a share is the
listener's proportion of correct identifications; the group test is one-sided (greater than chance), and a
listener discriminates when their own one-sided exact binomial p is below ``alpha`` (uncorrected). When every
listener has the same share the t test is undefined and the exact sign-flip test of the shares is used instead;
with a single listener the group test is that listener's binomial test. The pooled counts (every answer treated
as independent) are kept as ``pooled_share``, ``pooled_ci_*`` (Wilson) and ``p_pooled`` for reference.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evalkit.listening.model import Choice
from evalkit.stats.choice_power import share_test_p
from evalkit.stats.intervals import t_interval
from evalkit.stats.proportion import binomial_p, wilson_interval


@dataclass(frozen=True)
class PairSummary:
    """One AB or ABX pair: counts, the listener-level estimate (``share`` = mean of the listeners' shares with a
    Student-t CI over listeners, clipped to 0..1) and group test ``p`` (``group_test`` names it), the pooled
    figures, and ``per_listener`` {listener: {counts, share, p[, discriminates]}}."""

    a: str
    b: str
    n: int
    prefer_a: int
    prefer_b: int
    no_preference: int
    share: float
    ci_low: float
    ci_high: float
    p: float
    correct: int | None = None
    per_listener: dict | None = None
    listeners: int = 0
    group_test: str = ""
    pooled_share: float = math.nan
    pooled_ci_low: float = math.nan
    pooled_ci_high: float = math.nan
    p_pooled: float = math.nan
    discriminating_listeners: int | None = None


def _group_test(shares: list[float], abx: bool, confidence: float) -> tuple[float, float, float, float, str]:
    """(mean share, CI low, CI high, p, test name) over listeners' shares against 1/2."""
    x = np.asarray(shares, dtype=float)
    iv = t_interval(x, confidence)
    low, high = (min(max(iv.low, 0.0), 1.0), min(max(iv.high, 0.0), 1.0)) if len(x) > 1 else (math.nan, math.nan)
    if len(x) < 2:
        return iv.mean, low, high, math.nan, ""
    p, name = share_test_p(x, abx)
    return iv.mean, low, high, p, name


def analyze_choices(choices: Sequence[Choice], abx: bool = False, confidence: float = 0.95,
                    alpha: float = 0.05) -> list[PairSummary]:
    """AB or ABX summaries per condition pair (pairs as written in the choices: ``condition_a`` first)."""
    by_pair: dict[tuple[str, str], list[Choice]] = defaultdict(list)
    for c in choices:
        by_pair[(c.condition_a, c.condition_b)].append(c)
    out = []
    for (a, b), cs in sorted(by_pair.items()):
        listeners: dict[str, dict] = {}
        for c in cs:
            row = listeners.setdefault(c.assessor, {"prefer_a": 0, "prefer_b": 0, "no_preference": 0}
                                       | ({"correct": 0} if abx else {}))
            row["prefer_a" if c.chosen == a else "prefer_b" if c.chosen == b else "no_preference"] += 1
            if abx and c.chosen is not None and c.chosen == c.x:
                row["correct"] += 1
        shares = []
        for row in listeners.values():
            total = sum(row[k] for k in ("prefer_a", "prefer_b", "no_preference"))
            hits, n = (row["correct"], total) if abx else (row["prefer_a"], row["prefer_a"] + row["prefer_b"])
            row["share"] = hits / n if n else math.nan
            row["p"] = binomial_p(hits, n, "greater" if abx else "two-sided")
            if abx:
                row["discriminates"] = bool(row["p"] < alpha)
            if n:
                shares.append(row["share"])
        pa = sum(c.chosen == a for c in cs)
        pb = sum(c.chosen == b for c in cs)
        correct = sum(c.chosen is not None and c.chosen == c.x for c in cs) if abx else None
        hits, n = (correct, len(cs)) if abx else (pa, pa + pb)
        pooled = hits / n if n else math.nan
        plo, phi = wilson_interval(hits, n, confidence)
        p_pooled = binomial_p(hits, n, "greater" if abx else "two-sided")
        share, lo, hi, p, test = _group_test(shares, abx, confidence)
        if len(shares) == 1:  # one listener: the inference is about that listener
            share, lo, hi, p, test = pooled, plo, phi, p_pooled, "exact binomial (one listener)"
        out.append(PairSummary(a, b, len(cs), pa, pb, len(cs) - pa - pb, share, lo, hi, p, correct,
                               dict(sorted(listeners.items())), len(listeners), test, pooled, plo, phi, p_pooled,
                               sum(bool(r.get("discriminates")) for r in listeners.values()) if abx else None))
    return out
