"""Linear mixed model of MUSHRA ratings (REML) and Wald-t contrasts between conditions.

Model, one rating ``y`` of assessor ``a``, item ``i``, condition ``c`` (points, 0-100)::

    y = β_c + γ_i + u_a + w_ac + v_ai + e        u ~ N(0, σ²_assessor), w ~ N(0, σ²_assessor×condition),
                                                 v ~ N(0, σ²_assessor×item), e ~ N(0, σ²_residual)

Condition and item are fixed effects (the inference is about these items; an item-by-condition difference counts
as residual noise); the assessor intercept, the assessor-by-condition term (assessors disagree about a condition:
the error term a condition contrast is tested against, as in a repeated-measures ANOVA) and the assessor-by-item
term (one trial shows every condition of an item, so an assessor's mood on that trial shifts all its ratings) are
random. A contrast ``β_a − β_b`` is tested with a Wald t statistic whose degrees of freedom are Satterthwaite's,
computed from the REML expected information of the variance components (as lmerTest does; a component estimated at
zero is held fixed). In a balanced panel with every component above zero this is exactly the repeated-measures
ANOVA test of the pair against the assessor×condition mean square, df = (assessors − 1)(conditions − 1).
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

COMPONENTS = ("assessor", "assessor_x_condition", "assessor_x_item", "residual")
_BOUNDARY = 1e-6  # a component below this share of the total variance is on the boundary (held at 0 for df)


class Rating(Protocol):
    """What the model reads of one rating (``evalkit.listening.model.Rating`` is one): who rated which item in
    which condition, and the score in points."""

    @property
    def assessor(self) -> str: ...

    @property
    def item(self) -> str: ...

    @property
    def condition(self) -> str: ...

    @property
    def score(self) -> float: ...


class ModelError(ValueError):
    """The ratings cannot support the mixed model (too few assessors, conditions or ratings)."""


@dataclass(frozen=True, eq=False)
class MixedFit:
    """A fitted model: condition effects, their covariance and what the Satterthwaite df need.

    ``variance`` holds the REML variance components in points²; ``converged`` and ``method`` tell how the optimizer
    ended. The arrays are private to :func:`contrast`.
    """

    conditions: tuple[str, ...]
    items: tuple[str, ...]
    assessors: int
    ratings: int
    variance: dict[str, float]
    converged: bool
    method: str
    _beta: np.ndarray  # fixed effects, conditions first
    _cov: np.ndarray  # (X'V⁻¹X)⁻¹
    _dcov: tuple[np.ndarray, ...]  # ∂(X'V⁻¹X)/∂θ_j = −X'V⁻¹ V_j V⁻¹X for the free components
    _info_inv: np.ndarray  # inverse REML expected information of the free components


@dataclass(frozen=True)
class Contrast:
    """``estimate`` = β_a − β_b in points with its standard error, Satterthwaite df, two-sided p and CI."""

    estimate: float
    se: float
    df: float
    p: float
    ci_low: float
    ci_high: float


def _design(ratings: Sequence[Rating]):
    conditions = tuple(sorted({r.condition for r in ratings}))
    items = tuple(sorted({r.item for r in ratings}))
    assessors = tuple(sorted({r.assessor for r in ratings}))
    ci = {c: k for k, c in enumerate(conditions)}
    ii = {c: k for k, c in enumerate(items)}
    ai = {c: k for k, c in enumerate(assessors)}
    order = sorted(range(len(ratings)), key=lambda k: ai[ratings[k].assessor])
    y = np.array([ratings[k].score for k in order], dtype=float)
    a = np.array([ai[ratings[k].assessor] for k in order])
    c = np.array([ci[ratings[k].condition] for k in order])
    i = np.array([ii[ratings[k].item] for k in order])
    x = np.eye(len(conditions))[c]
    if len(items) > 1:
        x = np.column_stack([x, np.eye(len(items))[i][:, 1:]])
    return conditions, items, len(assessors), y, a, c, i, x


def fit_mixed(ratings: Sequence[Rating]) -> MixedFit:
    """REML fit of the model above by Fisher scoring (components kept ≥ 0) from an equal split of the residual
    variance of ordinary least squares; if scoring fails, statsmodels ``MixedLM`` (L-BFGS, BFGS, CG) is fitted and
    then polished by scoring. ``tests/stats`` checks the result against ``MixedLM`` and ``AnovaRM``.

    Raises:
        ModelError: fewer than 2 assessors or 2 conditions, or no residual degrees of freedom.
    """
    if not ratings:
        raise ModelError("mixed model: needs at least 2 assessors, got 0")
    conditions, items, n_assessors, y, a, c, i, x = _design(ratings)
    if n_assessors < 2:
        raise ModelError(f"mixed model: needs at least 2 assessors, got {n_assessors}")
    if len(conditions) < 2:
        raise ModelError(f"mixed model: needs at least 2 conditions, got {len(conditions)}")
    if len(y) <= x.shape[1] + n_assessors:
        raise ModelError(f"mixed model: {len(y)} ratings are too few for {x.shape[1]} effects and "
                         f"{n_assessors} assessors")
    with _one_blas_thread():
        return _fit(ratings, conditions, items, n_assessors, y, a, c, i, x)


def _one_blas_thread():
    """The blocks are small (one assessor's ratings): one BLAS thread is faster than many competing ones."""
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _fit(ratings, conditions, items, n_assessors, y, a, c, i, x) -> MixedFit:
    design = _Blocks(y, x, a, c, i, len(conditions), len(items))
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    share = max(float(resid @ resid) / max(len(y) - x.shape[1], 1), 1e-6) / 4
    start = {name: share for name in COMPONENTS} | ({} if len(items) > 1 else {"assessor_x_item": 0.0})
    method = "REML, Fisher scoring"
    try:
        variance, converged = design.score_fit(start)
    except np.linalg.LinAlgError:
        converged = False
    if not converged:
        variance, converged = _statsmodels_fit(y, x, a, c, i, len(conditions), len(items))
        variance, _ = design.score_fit(variance)
        method = "REML, statsmodels MixedLM then Fisher scoring"
    beta, cov, dcov, info_inv = design.information(variance)
    return MixedFit(conditions, items, n_assessors, len(y), variance, converged, method, beta, cov, dcov, info_inv)


def _statsmodels_fit(y, x, a, c, i, k: int, n_items: int) -> tuple[dict[str, float], bool]:
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    groups = np.unique(a)
    names, mats = ["assessor_x_condition"], [[np.eye(k)[c[a == g]] for g in groups]]
    col_names = [[f"c{j}" for j in range(k)]]
    if n_items > 1:
        names.append("assessor_x_item")
        mats.append([np.eye(n_items)[i[a == g]] for g in groups])
        col_names.append([f"i{j}" for j in range(n_items)])
    model = MixedLM(y, x, groups=a, exog_re=np.ones((len(y), 1)), exog_vc=VCSpec(names, col_names, mats))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary and convergence warnings: ``converged`` carries them
        result = model.fit(reml=True, method=["lbfgs", "bfgs", "cg"])
    return ({"assessor": float(np.asarray(result.cov_re)[0, 0]), "assessor_x_condition": float(result.vcomp[0]),
             "assessor_x_item": float(result.vcomp[1]) if n_items > 1 else 0.0, "residual": float(result.scale)},
            bool(result.converged))


class _Blocks:
    """The model's matrices per assessor (V is block diagonal by assessor) and the REML quantities built from them:
    log-likelihood, score and expected information ``½ tr(P V_j P V_k)`` of the variance components."""

    def __init__(self, y, x, a, c, i, k: int, n_items: int):
        self.x, self.y, self.n_items = x, y, n_items
        by_size: dict[int, list] = {}
        for g in np.unique(a):
            rows = np.flatnonzero(a == g)
            by_size.setdefault(len(rows), []).append(rows)
        self.groups = []  # assessors with the same number of ratings, stacked: X [G, n, p], y [G, n], V_j [G, n, n]
        for n, members in by_size.items():
            idx = np.array(members)
            zc, zi = np.eye(k)[c[idx]], np.eye(max(n_items, 1))[i[idx]]
            parts = {"assessor": np.ones((len(members), n, n)), "assessor_x_condition": zc @ zc.transpose(0, 2, 1),
                     "assessor_x_item": zi @ zi.transpose(0, 2, 1),
                     "residual": np.broadcast_to(np.eye(n), (len(members), n, n))}
            self.groups.append((x[idx], y[idx], parts))

    def _free(self, variance: dict[str, float]) -> list[str]:
        total = sum(variance.values())
        return [name for name in COMPONENTS if (variance[name] > _BOUNDARY * total or name == "residual")
                and not (name == "assessor_x_item" and self.n_items < 2)]

    def _pass(self, variance: dict[str, float], free: list[str]):
        p = self.x.shape[1]
        xtwx, xtwy = np.zeros((p, p)), np.zeros(p)
        ws, logdet = [], 0.0
        for xg, yg, parts in self.groups:
            v = sum(variance[name] * parts[name] for name in COMPONENTS)
            sign, ld = np.linalg.slogdet(v)
            w = np.linalg.inv(v)
            logdet += float(ld.sum()) if np.all(sign > 0) else math.inf
            ws.append(w)
            wx = w @ xg
            xtwx += np.einsum("gip,giq->pq", xg, wx)
            xtwy += np.einsum("giq,gi->q", wx, yg)
        cov = np.linalg.pinv(xtwx)
        beta = cov @ xtwy
        r = len(free)
        m = [np.zeros((p, p)) for _ in free]
        t1 = np.zeros((r, r))
        nn = [[np.zeros((p, p)) for _ in free] for _ in free]
        tr_wv, quad, rwr = np.zeros(r), np.zeros(r), 0.0
        for (xg, yg, parts), w in zip(self.groups, ws, strict=True):
            wx = w @ xg
            resid = yg - xg @ beta
            wr = np.einsum("gij,gj->gi", w, resid)
            rwr += float(np.sum(resid * wr))
            wd = [w @ parts[name] for name in free]  # W V_j
            u = [parts[name] @ wx for name in free]  # V_j W X
            q = [w @ uj for uj in u]  # W V_j W X
            for j, name in enumerate(free):
                m[j] += np.einsum("gip,giq->pq", wx, u[j])
                tr_wv[j] += float(np.einsum("gii->", wd[j]))
                quad[j] += float(np.einsum("gi,gij,gj->", wr, parts[name], wr))
                for kk in range(r):
                    t1[j, kk] += float(np.einsum("gij,gji->", wd[j], wd[kk]))
                    nn[j][kk] += np.einsum("gip,giq->pq", u[kk], q[j])  # X'W V_k W V_j W X
        info = np.empty_like(t1)
        for j in range(r):
            for kk in range(r):
                info[j, kk] = 0.5 * (t1[j, kk] - 2 * np.trace(cov @ nn[j][kk]) + np.trace(cov @ m[j] @ cov @ m[kk]))
        score = 0.5 * (quad - (tr_wv - np.array([np.trace(cov @ mj) for mj in m])))
        sign, ld_xtwx = np.linalg.slogdet(xtwx)
        llf = -0.5 * (logdet + ld_xtwx + rwr)
        return beta, cov, m, info, score, llf

    def loglike(self, variance: dict[str, float]) -> float:
        """REML log-likelihood up to a constant: ``−½ (log|V| + log|XᵀV⁻¹X| + rᵀV⁻¹r)``."""
        return self._pass(variance, [])[5]

    def score_fit(self, variance: dict[str, float], max_iter: int = 100) -> tuple[dict[str, float], bool]:
        """Fisher scoring from ``variance`` with components kept ≥ 0 (a step that would push a component below
        zero puts it on the boundary; a boundary component whose score is positive is freed again), step halving
        when the REML likelihood would drop; returns the best estimate and whether the steps converged."""
        best, best_llf = dict(variance), self.loglike(variance)
        current = dict(variance)
        for _ in range(max_iter):
            names = [n for n in COMPONENTS if not (n == "assessor_x_item" and self.n_items < 2)]
            _, _, _, info, score, llf = self._pass(current, names)
            active = [j for j, n in enumerate(names) if current[n] > 0 or score[j] > 0 or n == "residual"]
            proposal = dict(current)
            while True:  # active set: a component the step would push below zero is put on the boundary
                sub = np.ix_(active, active)
                try:
                    step = np.linalg.solve(info[sub], score[active])
                except np.linalg.LinAlgError:
                    return best, False
                negative = [j for j, s in zip(active, step, strict=True)
                            if current[names[j]] + float(s) < 0 and names[j] != "residual"]
                if not negative:
                    break
                for j in negative:
                    proposal[names[j]] = 0.0
                active = [j for j in active if j not in negative]
            for j, s in zip(active, step, strict=True):
                proposal[names[j]] = current[names[j]] + float(s)
            proposal["residual"] = max(proposal["residual"], 1e-9)
            new_llf = self.loglike(proposal)
            halvings = 0
            while new_llf < llf - 1e-12 and halvings < 20:
                proposal = {n: 0.5 * (proposal[n] + current[n]) for n in proposal}
                new_llf = self.loglike(proposal)
                halvings += 1
            converged = max(abs(proposal[n] - current[n]) for n in proposal) < 1e-9 * sum(current.values())
            current = proposal
            if new_llf > best_llf:
                best, best_llf = dict(current), new_llf
            if converged:
                return best, True
        return best, False

    def information(self, variance: dict[str, float]):
        """β, (XᵀV⁻¹X)⁻¹, −∂(XᵀV⁻¹X)/∂θ... and the inverse expected information of the free components."""
        free = self._free(variance)
        beta, cov, m, info, _, _ = self._pass(variance, free)
        return beta, cov, tuple(-mj for mj in m), np.linalg.pinv(info)


def contrast(fit: MixedFit, a: str, b: str, confidence: float = 0.95) -> Contrast:
    """Wald-t test of ``β_a − β_b = 0`` with Satterthwaite df: ``t = est / se``, ``df = 2·se⁴ / (gᵀ I⁻¹ g)``
    with ``g_j = ∂se²/∂θ_j``; CI ``est ± t(1 − α/2, df)·se`` (points)."""
    from scipy import stats

    vec = np.zeros(len(fit._beta))
    vec[fit.conditions.index(a)], vec[fit.conditions.index(b)] = 1.0, -1.0
    est = float(vec @ fit._beta)
    cv = fit._cov @ vec
    var = float(vec @ cv)
    if not var > 0:
        return Contrast(est, math.nan, math.nan, math.nan, math.nan, math.nan)
    grad = np.array([-(cv @ d @ cv) for d in fit._dcov])  # ∂(cᵀCc)/∂θ_j = cᵀC M_j C c
    denom = float(grad @ fit._info_inv @ grad)
    df = 2 * var * var / denom if denom > 0 else math.inf
    se = math.sqrt(var)
    t = est / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return Contrast(est, se, float(df), p, est - half, est + half)
