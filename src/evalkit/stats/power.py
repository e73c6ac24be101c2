"""Panel-size planning for MUSHRA: power of the mixed-model comparison by simulating whole panels.

The variance components come from a pilot's mixed-model fit (:mod:`evalkit.stats.mixed_model`). A simulated
panel has every assessor rate every item in every condition (``assessors × items × conditions`` normal ratings:
assessor-by-condition, assessor-by-item and residual terms; the assessor intercept cancels in every comparison),
with one pair of conditions apart by the planned difference. Each panel is analysed by the balanced-design form of
the mixed model's test: the pair's mean difference over ``√(2·MS/(assessors·items))`` with MS the
assessor-by-condition mean square (df (assessors − 1)(conditions − 1)), pooled with the residual when it falls
below it (the REML boundary, where the assessor-by-condition component is estimated at zero). The pair is tested
at ``alpha / pairs`` (Bonferroni: Holm's first step, so Holm's power is at least this). Ratings are not clipped
to 0-100 in the simulation. Draws are seeded, and one set of null panels serves every difference (common random
numbers), so power rises smoothly with the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_ASSESSORS = 500
_CHUNK_VALUES = 4_000_000  # ratings simulated at once


@dataclass(frozen=True)
class PanelModel:
    """What the simulation needs: variance components (points²) and the panel's items and conditions."""

    assessor_x_condition: float
    assessor_x_item: float
    residual: float
    items: int
    conditions: int

    @classmethod
    def from_fit(cls, fit, items: int | None = None) -> PanelModel:
        """From a :class:`~evalkit.stats.mixed_model.MixedFit` (``items``: planned items, default the pilot's)."""
        v = fit.variance
        return cls(v["assessor_x_condition"], v["assessor_x_item"], v["residual"],
                   len(fit.items) if items is None else items, len(fit.conditions))


def null_panels(model: PanelModel, assessors: int, sims: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate ``sims`` panels with no difference; per panel the pair's mean difference (points), its standard
    error and degrees of freedom under the balanced mixed-model test."""
    rng = np.random.default_rng([seed, assessors, model.items, model.conditions])
    n, m, k = assessors, model.items, model.conditions
    if n < 2 or k < 2:
        raise ValueError(f"panel: needs at least 2 assessors and 2 conditions, got {n} and {k}")
    diffs, ses, dfs = [], [], []
    chunk = max(1, _CHUNK_VALUES // (n * m * k))
    for start in range(0, sims, chunk):
        s = min(chunk, sims - start)
        y = (rng.standard_normal((s, n, 1, k)) * math.sqrt(model.assessor_x_condition)
             + rng.standard_normal((s, n, m, 1)) * math.sqrt(model.assessor_x_item)
             + rng.standard_normal((s, n, m, k)) * math.sqrt(model.residual))
        d, se, df = _balanced_test(y)
        diffs.append(d)
        ses.append(se)
        dfs.append(df)
    return np.concatenate(diffs), np.concatenate(ses), np.concatenate(dfs)


def _balanced_test(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Condition 0 − condition 1 in balanced panels ``y[panel, assessor, item, condition]``: difference, standard
    error ``√(2·MS/(n·m))`` and df (assessor×condition MS, pooled with the residual — and the assessor×item MS
    when it is below the residual — where it falls below the pooled residual: the REML boundary)."""
    s, n, m, k = y.shape
    grand = y.mean(axis=(1, 2, 3), keepdims=True)
    ya = y.mean(axis=(2, 3), keepdims=True)
    yi = y.mean(axis=(1, 3), keepdims=True)
    yc = y.mean(axis=(1, 2), keepdims=True)
    yac = y.mean(axis=2, keepdims=True)
    yai = y.mean(axis=3, keepdims=True)
    ss_ac = m * ((yac - ya - yc + grand) ** 2).sum(axis=(1, 2, 3))
    ss_ai = k * ((yai - ya - yi + grand) ** 2).sum(axis=(1, 2, 3))
    ss_total = ((y - grand) ** 2).sum(axis=(1, 2, 3))
    ss_a = m * k * ((ya - grand) ** 2).sum(axis=(1, 2, 3))
    ss_i = n * k * ((yi - grand) ** 2).sum(axis=(1, 2, 3))
    ss_c = n * m * ((yc - grand) ** 2).sum(axis=(1, 2, 3))
    ss_res = ss_total - ss_a - ss_i - ss_c - ss_ac - ss_ai
    df_ac, df_ai = (n - 1) * (k - 1), (n - 1) * (m - 1)
    df_res = n * m * k - 1 - (n - 1) - (m - 1) - (k - 1) - df_ac - df_ai
    pooled_ss, pooled_df = ss_res.copy(), np.full(s, float(df_res))
    ai_in = np.zeros(s, dtype=bool)
    if df_ai > 0:
        ai_in = ss_ai / df_ai < pooled_ss / np.maximum(pooled_df, 1)
        pooled_ss, pooled_df = pooled_ss + np.where(ai_in, ss_ai, 0), pooled_df + np.where(ai_in, df_ai, 0)
    ms_ac = ss_ac / df_ac
    ac_in = ms_ac < pooled_ss / np.maximum(pooled_df, 1)
    ms = np.where(ac_in, (pooled_ss + ss_ac) / (pooled_df + df_ac), ms_ac)
    df = np.where(ac_in, pooled_df + df_ac, float(df_ac))
    d = (yc[:, 0, 0, 0] - yc[:, 0, 0, 1])
    return d, np.sqrt(2 * ms / (n * m)), df


def power_from(null: tuple[np.ndarray, np.ndarray, np.ndarray], difference: float, alpha_pair: float) -> float:
    from scipy import stats

    d, se, df = null
    crit = stats.t.ppf(1 - alpha_pair / 2, df)
    return float(np.mean(np.abs(d + difference) / se > crit))


def power(model: PanelModel, assessors: int, difference: float, alpha: float = 0.05, pairs: int = 1,
          sims: int = 2000, seed: int = 0) -> float:
    """Share of simulated panels in which a true ``difference`` (points) is significant at ``alpha / pairs``."""
    return power_from(null_panels(model, assessors, sims, seed), difference, alpha / pairs)


@dataclass(frozen=True)
class Requirement:
    """Fewest assessors reaching ``power`` (None: more than ``MAX_ASSESSORS``) and the power simulated there."""

    assessors: int | None
    power: float


def assessors_needed(model: PanelModel, difference: float, target: float = 0.8, alpha: float = 0.05,
                     pairs: int = 1, sims: int = 2000, seed: int = 0, max_assessors: int = MAX_ASSESSORS,
                     cache: dict | None = None) -> Requirement:
    """Smallest panel whose simulated power for ``difference`` reaches ``target`` (doubling, then bisection);
    ``cache`` (assessors → null panels) lets several differences share the simulations."""
    cache = {} if cache is None else cache

    def at(n: int) -> float:
        if n not in cache:
            cache[n] = null_panels(model, n, sims, seed)
        return power_from(cache[n], abs(difference), alpha / pairs)

    if not difference or not math.isfinite(difference):
        return Requirement(None, math.nan)
    low, high = 1, 2
    while at(high) < target:
        low, high = high, high * 2
        if low >= max_assessors:
            return Requirement(None, at(max_assessors))
        high = min(high, max_assessors)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if at(mid) >= target else (mid, high)
    return Requirement(high, at(high))


def minimum_detectable_difference(model: PanelModel, assessors: int, target: float = 0.8, alpha: float = 0.05,
                                  pairs: int = 1, sims: int = 2000, seed: int = 0) -> float:
    """Smallest true difference (points) detected with power ``target`` by a panel of ``assessors``
    (bisection on the difference over one set of seeded null panels)."""
    null = null_panels(model, assessors, sims, seed)
    low, high = 0.0, 1.0
    while power_from(null, high, alpha / pairs) < target:
        high *= 2
        if high > 1e4:
            return math.nan
    for _ in range(50):
        mid = 0.5 * (low + high)
        low, high = (low, mid) if power_from(null, mid, alpha / pairs) >= target else (mid, high)
    return high
