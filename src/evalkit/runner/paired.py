"""Paired comparisons of codec variants on one objective metric, over the items both variants scored.

For variants a and b, the per-item differences ``d_i = x_a,i − x_b,i`` over their shared items (both values
finite) give:

* the mean difference with its 95 % CI over the differences (:func:`evalkit.stats.bootstrap.mean_ci`: a BCa
  bootstrap widened for small n, Student's t under 6 items; the items are resampled, the same items for both
  variants, so item difficulty cancels), ``resamples`` times, seeded;
* the two-sided **Wilcoxon signed-rank** test of a zero median difference (scipy; zero differences dropped,
  exact for small tie-free samples); all-zero differences give p = 1;
* **Holm**'s step-down adjustment over every pair of the metric (family-wise error at ``alpha``).

A pair is a *win* for a when both agree: the Holm-adjusted p is below ``alpha`` and the CI excludes 0 on the
side the metric calls better; a *loss* in the mirror case; otherwise a *tie* (no difference detected). With n
items the smallest two-sided Wilcoxon p is 2 / 2^n: :func:`~evalkit.stats.paired.smallest_wilcoxon_p` says when
no pair can reach ``alpha``.

>>> d = compare_pair([3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
>>> d.n, d.mean_difference, d.p  # 6 positive differences: exact p = 2 / 2^6
(6, 3.25, 0.03125)
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evalkit.messages import format_p
from evalkit.stats.bootstrap import METHOD as BOOTSTRAP_METHOD
from evalkit.stats.bootstrap import RESAMPLES as BOOTSTRAP_RESAMPLES
from evalkit.stats.bootstrap import mean_ci
from evalkit.stats.multiple import holm
from evalkit.stats.paired import smallest_wilcoxon_p, wilcoxon

ALPHA = 0.05
RESAMPLES = BOOTSTRAP_RESAMPLES
METHOD = (f"paired 95 % CI of the mean difference over shared items ({BOOTSTRAP_METHOD}); two-sided Wilcoxon "
          "signed-rank test; Holm over every pair of the metric")
paired_bootstrap_ci = mean_ci  # the one CI of a mean over items, under its old name


class Outcome(enum.StrEnum):
    """A pair's verdict from variant a's side, in the metric's direction."""

    WIN = "win"
    TIE = "tie"
    LOSS = "loss"


@dataclass(frozen=True)
class PairedDifference:
    """Variant a against b on one metric: ``mean_difference`` is mean(a − b) over ``n`` shared items, in the
    metric's unit; ``p`` the Wilcoxon p, ``p_holm`` adjusted over the metric's pairs; NaN plus ``reason`` when
    undefined (fewer than 2 shared items)."""

    a: str
    b: str
    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    statistic: float
    p: float
    p_holm: float = math.nan
    outcome: Outcome = Outcome.TIE
    reason: str | None = None


@dataclass(frozen=True)
class PairedComparison:
    """Every pair of variants on one metric, with the verdicts and the design's smallest attainable p."""

    metric: str
    higher_is_better: bool
    alpha: float
    pairs: list[PairedDifference]
    variants: list[str]

    def outcome(self, a: str, b: str) -> Outcome | None:
        """a's verdict against b (None for a = b or a pair without shared items)."""
        for d in self.pairs:
            if (d.a, d.b) == (a, b):
                return d.outcome if d.reason is None else None
            if (d.a, d.b) == (b, a):
                return None if d.reason is not None else {Outcome.WIN: Outcome.LOSS, Outcome.LOSS: Outcome.WIN}.get(
                    d.outcome, Outcome.TIE)
        return None

    def record(self, spec: str) -> dict[str, int]:
        """Wins, ties and losses of one variant against every other."""
        counts = {o.value: 0 for o in Outcome}
        for other in self.variants:
            if other != spec and (o := self.outcome(spec, other)) is not None:
                counts[o.value] += 1
        return counts

    def power_note(self) -> str | None:
        """Why no pair can come out as a win or loss (too few items for the number of pairs), else None."""
        ns = [d.n for d in self.pairs if d.reason is None]
        if not ns or smallest_wilcoxon_p(max(ns)) * len(ns) < self.alpha:
            return None
        smallest = smallest_wilcoxon_p(max(ns))
        return (f"with {max(ns)} shared items the smallest exact Wilcoxon p is {smallest:.2g}; times "
                f"{len(ns)} pairs (Holm) it cannot reach alpha {self.alpha:g}, so every pair is a tie by design")

    def to_json(self) -> dict:
        """The ``compare --paired --json`` object; NaN becomes ``null``."""
        def num(v: float) -> float | None:
            return None if v is None or math.isnan(v) else float(v)

        return {"metric": self.metric, "higher_is_better": self.higher_is_better, "alpha": self.alpha,
                "method": METHOD,
                "pairs": [{"a": d.a, "b": d.b, "n": d.n, "mean_difference": num(d.mean_difference),
                           "ci_low": num(d.ci_low), "ci_high": num(d.ci_high), "statistic": num(d.statistic),
                           "p": num(d.p), "p_holm": num(d.p_holm), "outcome": str(d.outcome), "reason": d.reason}
                          for d in self.pairs],
                "records": {spec: self.record(spec) for spec in self.variants}, "note": self.power_note()}


def compare_pair(a: Sequence[float], b: Sequence[float], *, seed: int = 0, names: tuple[str, str] = ("a", "b"),
                 resamples: int = RESAMPLES) -> PairedDifference:
    """Mean difference a − b with its paired bootstrap CI and the Wilcoxon test, over positions where both
    values are finite (no Holm adjustment: see :func:`compare_variants`)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired values must have one value per item for both variants, got {x.shape} and "
                         f"{y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    if len(d) < 2:
        return PairedDifference(*names, len(d), math.nan, math.nan, math.nan, math.nan, math.nan,
                                reason=f"{len(d)} shared item{'s' if len(d) != 1 else ''} with values, need 2")
    lo, hi = mean_ci(d, seed, resamples=resamples)
    test = wilcoxon(d)
    return PairedDifference(*names, len(d), float(d.mean()), lo, hi, test.statistic, test.p)


def _verdict(d: PairedDifference, higher_is_better: bool, alpha: float) -> Outcome:
    if d.reason is not None or not d.p_holm < alpha:
        return Outcome.TIE
    better_low = d.ci_low > 0 if higher_is_better else d.ci_high < 0  # a better than b, CI excludes 0
    worse = d.ci_high < 0 if higher_is_better else d.ci_low > 0
    return Outcome.WIN if better_low else Outcome.LOSS if worse else Outcome.TIE


def compare_variants(values: pd.DataFrame, metric: str, higher_is_better: bool, *, variants: Sequence[str] | None
                     = None, alpha: float = ALPHA, seed: int = 0, resamples: int = RESAMPLES) -> PairedComparison:
    """Every pair of variants on ``metric``: paired differences, Wilcoxon p, Holm over the pairs, verdicts.

    Args:
        values: long rows with ``item_id``, ``codec_spec``, ``metric`` and ``value`` (NaN for a failure).
        metric: the metric to compare on.
        higher_is_better: the metric's direction (decides which side of 0 is a win).
        variants: the variants and their order (default: every variant with the metric, sorted).
        alpha: family-wise error level of the Holm adjustment.
        seed: seed of the bootstrap resampling (the same for every pair).

    Returns:
        :class:`PairedComparison` with one entry per unordered pair (a before b in ``variants`` order).
    """
    rows = values[values["metric"] == metric]
    wide = rows.pivot_table(index="item_id", columns="codec_spec", values="value", aggfunc="first", dropna=False)
    order = list(variants) if variants is not None else sorted(wide.columns)
    order = [v for v in order if v in wide.columns]
    raw = [compare_pair(wide[a].to_numpy(float), wide[b].to_numpy(float), seed=seed, names=(a, b),
                        resamples=resamples) for a, b in itertools.combinations(order, 2)]
    adjusted = holm([d.p for d in raw])
    pairs = []
    for d, p_holm in zip(raw, adjusted, strict=True):
        d = PairedDifference(**{**d.__dict__, "p_holm": p_holm})
        pairs.append(PairedDifference(**{**d.__dict__, "outcome": _verdict(d, higher_is_better, alpha)}))
    return PairedComparison(metric, higher_is_better, alpha, pairs, order)


def format_paired(result: PairedComparison, labels: dict[str, str] | None = None) -> str:
    """Plain-text table of every pair, then each variant's wins / ties / losses."""
    labels = labels or {}
    name = {s: labels.get(s, s) for s in result.variants}
    width = max([len(v) for v in name.values()] + [7])
    direction = "higher is better" if result.higher_is_better else "lower is better"
    lines = [f"Paired comparisons on {result.metric} ({direction}): {METHOD}; alpha {result.alpha:g}",
             f"{'a':<{width}}  {'b':<{width}}  {'n':>3} {'mean a-b':>10} {'95% CI':>21} {'p':>8} {'p Holm':>8}"
             f"  verdict for a"]
    for d in result.pairs:
        if d.reason:
            lines.append(f"{name[d.a]:<{width}}  {name[d.b]:<{width}}  {d.n:>3}  {d.reason}")
            continue
        ci = f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]"
        lines.append(f"{name[d.a]:<{width}}  {name[d.b]:<{width}}  {d.n:>3} {d.mean_difference:>+10.4f} {ci:>21} "
                     f"{format_p(d.p):>8} {format_p(d.p_holm):>8}  {d.outcome}")
    if not result.pairs:
        lines.append("(fewer than two variants have this metric)")
    lines.append("")
    lines.append(f"{'variant':<{width}}  {'wins':>4} {'ties':>4} {'losses':>6}")
    for spec in result.variants:
        r = result.record(spec)
        lines.append(f"{name[spec]:<{width}}  {r['win']:>4} {r['tie']:>4} {r['loss']:>6}")
    if note := result.power_note():
        lines.append(f"note: {note}")
    return "\n".join(lines)
