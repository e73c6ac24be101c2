"""Statistics of MUSHRA listening tests as pure functions (ITU-R BS.1534-3); AB and ABX are in ``choice_analysis``.

Ratings of one assessor are not independent, so MUSHRA confidence intervals are Student-t intervals over the
assessors' per-condition means (one number per assessor, clipped to the 0-100 scale), and comparisons either fit
the mixed model of :mod:`evalkit.stats.mixed_model` to every kept rating (``mixed``, the default) or pair the
assessors' means (``t``, ``wilcoxon``, ``permutation``).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from evalkit.listening.model import ANCHOR_MID, REFERENCE, Exclusion, Rating
from evalkit.stats.intervals import median_iqr, t_interval
from evalkit.stats.multiple import holm
from evalkit.stats.paired import one_sample_t, sign_flip, wilcoxon

SCREEN_SHARE = 0.15  # BS.1534-3 post-screening: more than 15 % of the items
SCREEN_LEVEL = 90.0


def screen_assessors(ratings: Iterable[Rating], share: float = SCREEN_SHARE,
                     level: float = SCREEN_LEVEL) -> list[Exclusion]:
    """BS.1534-3 post-screening: exclude an assessor who rates the hidden reference below ``level`` for more than
    ``share`` of the items they rated it in, or the mid anchor (``anchor70``) above ``level`` for more than
    ``share`` of its items. 1 of 10 items (10 %) is kept; 2 or 3 of 10 are excluded.

    >>> rs = [Rating("a", f"i{k}", "reference", 80 if k < 3 else 100) for k in range(10)]
    >>> screen_assessors(rs)[0].reason
    'hidden reference rated below 90 for 3 of 10 items (30%)'
    """
    by_assessor: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_assessor[r.assessor].append(r)
    out = []
    for assessor in sorted(by_assessor):
        reasons = []
        for condition, bad, what in ((REFERENCE, lambda s: s < level, f"hidden reference rated below {level:g}"),
                                     (ANCHOR_MID, lambda s: s > level, f"mid anchor rated above {level:g}")):
            per_item = {r.item: r.score for r in by_assessor[assessor] if r.condition == condition}
            n_bad = sum(bad(s) for s in per_item.values())
            if per_item and n_bad / len(per_item) > share:
                reasons.append(f"{what} for {n_bad} of {len(per_item)} items ({100 * n_bad / len(per_item):.0f}%)")
        if reasons:
            out.append(Exclusion(assessor, "; ".join(reasons)))
    return out


@dataclass(frozen=True)
class Summary:
    """Mean with its Student-t CI over assessors, median and IQR of the same per-assessor values."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    median: float
    iqr: float


SCALE = (0.0, 100.0)  # the MUSHRA scale; CIs are clipped to it
CI_METHOD = "Student-t over assessor means, clipped to 0..100"


def summarize(values: Sequence[float], confidence: float = 0.95, clip: tuple[float, float] | None = SCALE) -> Summary:
    """Mean, Student-t CI (bounds clipped to ``clip``: the scale holds the true mean), median and IQR.

    >>> s = summarize([100.0, 100.0, 90.0])  # t CI 96.67 ± 14.34 reaches 111.0: clipped to 100
    >>> round(s.mean, 2), round(s.ci_low, 2), s.ci_high
    (96.67, 82.32, 100.0)
    """
    iv = t_interval(values, confidence)
    low, high = iv.low, iv.high
    if clip is not None and not math.isnan(low):
        low, high = min(max(low, clip[0]), clip[1]), min(max(high, clip[0]), clip[1])
    med, iqr = median_iqr(values)
    return Summary(iv.mean, low, high, iv.n, med, iqr)


TESTS = ("mixed", "t", "wilcoxon", "permutation")


@dataclass(frozen=True)
class Comparison:
    """One tested pair: ``mean_difference`` = a − b in points with its CI, p and Holm-adjusted p over the tested
    pairs. ``mixed``: model contrast, Wald t with Satterthwaite ``df``; ``t``: paired t on assessor means
    (``df`` = n − 1); ``wilcoxon`` / ``permutation``: rank / sign-flip p on assessor means with the paired-t CI
    (``df`` NaN). ``n``: assessors who rated both."""

    a: str
    b: str
    n: int
    mean_difference: float
    test: str
    p: float
    p_holm: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    df: float = math.nan


def assessor_means(ratings: Iterable[Rating]) -> dict[str, dict[str, float]]:
    """``{condition: {assessor: mean score over the items}}``."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in ratings:
        acc[(r.condition, r.assessor)].append(r.score)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (condition, assessor), scores in sorted(acc.items()):
        out[condition][assessor] = float(np.mean(scores))
    return dict(out)


def comparison_pairs(conditions: Iterable[str], versus: str | None = None) -> list[tuple[str, str]]:
    """Every pair of conditions (sorted names, ``a`` < ``b``), or ``versus`` against each other condition.

    >>> comparison_pairs(["x", "ref", "y"]), comparison_pairs(["x", "ref", "y"], versus="ref")
    ([('ref', 'x'), ('ref', 'y'), ('x', 'y')], [('ref', 'x'), ('ref', 'y')])

    Raises:
        ValueError: ``versus`` is not one of the conditions.
    """
    names = sorted(set(conditions))
    if versus is None:
        return list(itertools.combinations(names, 2))
    if versus not in names:
        raise ValueError(f"--versus {versus}: not a condition of the test (conditions: {', '.join(names)})")
    return [(versus, c) for c in names if c != versus]


def _paired(a: str, b: str, means: dict[str, dict[str, float]], test: str, confidence: float) -> tuple:
    common = sorted(set(means[a]) & set(means[b]))
    d = np.array([means[a][k] - means[b][k] for k in common])
    iv = t_interval(d, confidence)
    result = {"t": one_sample_t, "wilcoxon": wilcoxon, "permutation": sign_flip}[test](d)
    return len(common), iv.mean, result.p, iv.low, iv.high, float(len(d) - 1) if test == "t" else math.nan


def paired_comparisons(means: dict[str, dict[str, float]], test: str = "wilcoxon", *,
                       pairs: Sequence[tuple[str, str]] | None = None, confidence: float = 0.95) -> list[Comparison]:
    """Pairs of conditions (default: every pair) tested on per-assessor mean differences, Holm over the pairs."""
    if test not in ("t", "wilcoxon", "permutation"):
        raise ValueError(f"test: expected 't', 'wilcoxon' or 'permutation', got {test!r}")
    pairs = comparison_pairs(means) if pairs is None else list(pairs)
    rows = [(a, b, *_paired(a, b, means, test, confidence)) for a, b in pairs]
    adjusted = holm([r[4] for r in rows])
    return [Comparison(a, b, n, md, test, p, pa, lo, hi, df)
            for (a, b, n, md, p, lo, hi, df), pa in zip(rows, adjusted, strict=True)]


def mixed_comparisons(ratings: Sequence[Rating], pairs: Sequence[tuple[str, str]], fit=None,
                      confidence: float = 0.95) -> list[Comparison]:
    """Wald-t contrasts of the mixed model (fitted here unless ``fit`` is given), Holm over ``pairs``.

    Raises:
        ModelError: the ratings cannot support the model (see :func:`evalkit.stats.mixed_model.fit_mixed`).
    """
    from evalkit.stats.mixed_model import contrast, fit_mixed

    fit = fit_mixed(ratings) if fit is None else fit
    raters: dict[str, set[str]] = defaultdict(set)
    for r in ratings:
        raters[r.condition].add(r.assessor)
    results = [contrast(fit, a, b, confidence) for a, b in pairs]
    adjusted = holm([c.p for c in results])
    return [Comparison(a, b, len(raters[a] & raters[b]), c.estimate, "mixed", c.p, pa, c.ci_low, c.ci_high, c.df)
            for (a, b), c, pa in zip(pairs, results, adjusted, strict=True)]


@dataclass(frozen=True, eq=False)
class MushraAnalysis:
    conditions: dict[str, Summary]
    items: dict[str, dict[str, Summary]]
    excluded: list[Exclusion]
    comparisons: list[Comparison]
    assessors: int
    model: object | None = None  # the MixedFit of the kept ratings (None when it could not be fitted)
    model_error: str | None = None


def analyze_mushra(ratings: Sequence[Rating], *, test: str = "mixed", versus: str | None = None,
                   confidence: float = 0.95) -> MushraAnalysis:
    """Post-screening, then per condition and per item summaries and Holm-corrected comparisons of every pair
    (or of ``versus`` against each other condition). The mixed model is fitted whatever ``test`` is (the panel
    planning needs its variance components); when it cannot be, ``mixed`` comparisons are NaN and
    ``model_error`` says why.

    Raises:
        ValueError: an unknown ``test`` or ``versus``.
    """

    if test not in TESTS:
        raise ValueError(f"test: expected one of {', '.join(TESTS)}, got {test!r}")
    excluded = screen_assessors(ratings)
    out = {e.assessor for e in excluded}
    kept = [r for r in ratings if r.assessor not in out]
    means = assessor_means(kept)
    pairs = comparison_pairs(means, versus)
    conditions = {c: summarize(list(v.values()), confidence) for c, v in means.items()}
    conditions = dict(sorted(conditions.items(), key=lambda kv: -kv[1].mean))
    per_item: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in kept:
        per_item[r.item][r.condition].append(r.score)
    items = {i: {c: summarize(v, confidence) for c, v in sorted(cs.items())} for i, cs in sorted(per_item.items())}
    comparisons, fit, error = compare_conditions(kept, means, pairs, test, confidence)
    return MushraAnalysis(conditions, items, excluded, comparisons, len({r.assessor for r in kept}), fit, error)


def compare_conditions(kept: Sequence[Rating], means: dict[str, dict[str, float]], pairs: Sequence[tuple[str, str]],
                       test: str, confidence: float) -> tuple[list[Comparison], object, str | None]:
    """The comparisons of ``pairs`` (mixed model on every rating, or ``test`` on the assessor ``means``), the
    fitted mixed model (None when it could not be fitted) and why not. The model is fitted in every case: its
    variance components are reported with any test."""
    from evalkit.stats.mixed_model import ModelError, fit_mixed

    fit, error = None, None
    try:
        fit = fit_mixed(kept)
    except ModelError as exc:
        error = str(exc)
    except np.linalg.LinAlgError as exc:
        error = f"mixed model: {exc}"
    if test != "mixed":
        comparisons = paired_comparisons(means, test, pairs=pairs, confidence=confidence)
    elif fit is not None:
        comparisons = mixed_comparisons(kept, pairs, fit, confidence)
    else:
        comparisons = [Comparison(a, b, 0, math.nan, "mixed", math.nan, math.nan) for a, b in pairs]
    return comparisons, fit, error
