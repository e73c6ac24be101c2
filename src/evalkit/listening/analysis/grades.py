"""Statistics of ACR and DCR (ITU-T P.800 / P.808) and BS.1116 (ITU-R BS.1116-3) listening tests, pure functions.

ACR gives a MOS and DCR a DMOS per condition (grades 1-5, the hidden reference one of the conditions); BS.1116 gives
per condition the mean *difference grade*: the condition's grade minus the hidden reference's grade in the same
trial (-4.0 to +4.0, 0 = not told apart from the reference).

Intervals. The primary 95 % CI is a Student-t interval over the listeners' per-condition means (one number per
listener), as for MUSHRA in :mod:`evalkit.listening.analysis.mushra`: the ratings of one listener share that
listener's use of the scale, so they are not independent, and an interval that treats the ratings as independent
is too narrow whenever listeners differ (its standard error ignores the listener variance divided by the number of
listeners only). P.800 (and P.808's ``CI95 = t(0.975, M-1) · s / √M``) computes the interval over the M ratings of
a condition; it is reported beside the primary one (``ratings_ci_*``), labelled, so that numbers can be compared
with papers that use it. Both are clipped to the scale. Comparisons fit the listening mixed model of
:mod:`evalkit.stats.mixed_model` (listener random intercept, listener×condition and listener×item terms) to the
kept grades (difference grades for BS.1116), with Holm's correction over the tested pairs, or pair the listener
means (``t``, ``wilcoxon``, ``permutation``) as for MUSHRA.

BS.1116-3 post-screening removes listeners who cannot find the hidden reference: a listener is excluded when the
hidden reference got a lower grade than the coded signal (a positive difference grade) in more than
``SCREEN_SHARE`` of their trials (15 %, the share BS.1534-3 uses for its hidden-reference rule; a listener who
guesses does so in about half of the trials).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from evalkit.listening.analysis.mushra import (
    TESTS,
    Comparison,
    Exclusion,
    assessor_means,
    compare_conditions,
    comparison_pairs,
    median_iqr,
    t_interval,
)
from evalkit.listening.model import REFERENCE, Rating

SCREEN_SHARE = 0.15  # BS.1116 post-screening: hidden reference graded below the signal in more than 15 % of trials
GRADE_SCALE = (1.0, 5.0)  # ACR, DCR and BS.1116 grades
DIFFERENCE_SCALE = (-4.0, 4.0)  # BS.1116 difference grades
CI_METHOD = "Student-t over listener means"
RATINGS_CI_METHOD = "Student-t over all ratings (ITU-T P.800 / P.808), ratings taken as independent"


@dataclass(frozen=True)
class GradeSummary:
    """One condition (or item × condition): the mean of the listeners' means with its Student-t CI over listeners
    (``n`` listeners), median and IQR of the listener means, and P.800's interval over the ``ratings`` grades."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    median: float
    iqr: float
    ratings: int
    ratings_mean: float
    ratings_ci_low: float
    ratings_ci_high: float


def _clip(value: float, scale: tuple[float, float]) -> float:
    return value if math.isnan(value) else min(max(value, scale[0]), scale[1])


def summarize_grades(by_listener: dict[str, list[float]], scale: tuple[float, float] = GRADE_SCALE,
                     confidence: float = 0.95) -> GradeSummary:
    """:class:`GradeSummary` of ``{listener: [grades]}``; CI bounds clipped to ``scale``.

    >>> s = summarize_grades({"a": [4, 5], "b": [3, 3], "c": [4, 4]})  # listener means 4.5, 3, 4
    >>> round(s.mean, 4), s.n, s.ratings, round(s.ratings_mean, 4)  # 11.5/3; the 6 ratings average 23/6
    (3.8333, 3, 6, 3.8333)
    """
    means = [float(np.mean(v)) for v in by_listener.values() if len(v)]
    flat = [float(x) for v in by_listener.values() for x in v]
    listeners, ratings = t_interval(means, confidence), t_interval(flat, confidence)
    median, iqr = median_iqr(means)
    return GradeSummary(listeners.mean, _clip(listeners.low, scale), _clip(listeners.high, scale), listeners.n,
                        median, iqr, ratings.n, ratings.mean, _clip(ratings.low, scale), _clip(ratings.high, scale))


def difference_grades(trial_ratings: Iterable[tuple[str, int, Rating]]) -> list[Rating]:
    """BS.1116 difference grades: per (listener, trial), the coded signal's grade minus the hidden reference's,
    as a :class:`Rating` of the coded condition. A trial without exactly one hidden-reference grade and one other
    grade is skipped.

    >>> rs = [("a", 0, Rating("a", "i", "reference", 4.6)), ("a", 0, Rating("a", "i", "opus", 3.1))]
    >>> difference_grades(rs)
    [Rating(assessor='a', item='i', condition='opus', score=-1.5)]
    """
    trials: dict[tuple[str, int], list[Rating]] = defaultdict(list)
    for assessor, index, rating in trial_ratings:
        trials[(assessor, index)].append(rating)
    out = []
    for (_, _), grades in sorted(trials.items()):
        hidden = [g for g in grades if g.condition == REFERENCE]
        coded = [g for g in grades if g.condition != REFERENCE]
        if len(hidden) == 1 and len(coded) == 1:
            c = coded[0]
            out.append(Rating(c.assessor, c.item, c.condition, round(c.score - hidden[0].score, 1)))
    return out


def screen_hidden_reference(differences: Iterable[Rating], share: float = SCREEN_SHARE) -> list[Exclusion]:
    """BS.1116 post-screening: listeners who graded the hidden reference below the coded signal (difference grade
    above 0) in more than ``share`` of their trials.

    >>> ds = [Rating("a", f"i{k}", "opus", 0.5 if k < 2 else -1.0) for k in range(10)]
    >>> screen_hidden_reference(ds)[0].reason
    'hidden reference graded below the coded signal in 2 of 10 trials (20%)'
    """
    by_listener: dict[str, list[float]] = defaultdict(list)
    for d in differences:
        by_listener[d.assessor].append(d.score)
    out = []
    for listener, scores in sorted(by_listener.items()):
        wrong = sum(s > 0 for s in scores)
        if wrong / len(scores) > share:
            out.append(Exclusion(listener, f"hidden reference graded below the coded signal in {wrong} of "
                                           f"{len(scores)} trials ({100 * wrong / len(scores):.0f}%)"))
    return out


@dataclass(frozen=True, eq=False)
class GradedAnalysis:
    conditions: dict[str, GradeSummary]  # best first
    items: dict[str, dict[str, GradeSummary]]
    excluded: list[Exclusion]
    comparisons: list[Comparison]
    assessors: int
    model: object | None = None  # MixedFit of the kept grades (None when it could not be fitted)
    model_error: str | None = None


def _by_listener(ratings: Iterable[Rating], key) -> dict:
    out: dict = defaultdict(lambda: defaultdict(list))
    for r in ratings:
        out[key(r)][r.assessor].append(r.score)
    return out


def analyze_grades(ratings: Sequence[Rating], *, scale: tuple[float, float] = GRADE_SCALE, screen: bool = False,
                   test: str = "mixed", versus: str | None = None, confidence: float = 0.95) -> GradedAnalysis:
    """Post-screening (``screen``: BS.1116 difference grades), then per condition and per item summaries and
    Holm-corrected comparisons of every pair of conditions (or of ``versus`` against each other one). The mixed
    model is fitted whatever ``test`` is; when it cannot be (one condition, one listener), ``model_error`` says why
    and ``mixed`` comparisons are NaN.

    Raises:
        ValueError: an unknown ``test`` or ``versus``.
    """

    if test not in TESTS:
        raise ValueError(f"test: expected one of {', '.join(TESTS)}, got {test!r}")
    excluded = screen_hidden_reference(ratings) if screen else []
    out = {e.assessor for e in excluded}
    kept = [r for r in ratings if r.assessor not in out]
    by_condition = _by_listener(kept, lambda r: r.condition)
    conditions = {c: summarize_grades(v, scale, confidence) for c, v in by_condition.items()}
    conditions = dict(sorted(conditions.items(), key=lambda kv: (-kv[1].mean, kv[0])))
    by_item = _by_listener(kept, lambda r: (r.item, r.condition))
    items: dict[str, dict[str, GradeSummary]] = defaultdict(dict)
    for (item, condition), v in sorted(by_item.items()):
        items[item][condition] = summarize_grades(v, scale, confidence)
    means = assessor_means(kept)
    pairs = comparison_pairs(means, versus)
    comparisons, fit, error = compare_conditions(kept, means, pairs, test, confidence)
    return GradedAnalysis(conditions, dict(items), excluded, comparisons, len({r.assessor for r in kept}), fit,
                          error)
