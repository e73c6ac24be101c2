"""Figures of a listening test: MUSHRA means with 95 % CIs per condition and per item, MUSHRA score
distributions, AB/ABX shares with Wilson intervals, and MUSHRA against an objective metric. Each is a pure
function, data in, a ``Figure`` out, or ``None`` when there is nothing to plot; conditions are drawn in their
codec family's style, the hidden reference and the anchors in the reference's and the anchors' styles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evalkit.listening.model import ANCHOR_LOW, ANCHOR_MID
from evalkit.listening.model import REFERENCE as HIDDEN_REFERENCE
from evalkit.reports.plots.style import (
    ANCHOR_STYLE,
    COLUMN_IN,
    GREY,
    HEIGHT_IN,
    FamilyStyle,
    _dot_whisker,
    _family,
    _figure,
    _finish,
    _legend_height,
    _rows_size,
    _styled,
    _wrap,
    family_style,
    metric_label,
    metric_name,
    short_label,
)
from evalkit.reports.rundata import REFERENCE_SPEC


def _condition_label(name: str, labels: dict[str, str] | None = None) -> str:
    """The test's own label of a condition (``labels``: an analysis' ``labels``, from ``test.json``), else the
    shared short label: ``Reference`` (hidden), ``3.5 kHz anchor``, ``Opus 12 kbps``."""
    return (labels or {}).get(name) or short_label(name)


def _condition_style(name: str) -> FamilyStyle:
    if name == HIDDEN_REFERENCE:
        return family_style(REFERENCE_SPEC)
    if name in (ANCHOR_LOW, ANCHOR_MID):
        return ANCHOR_STYLE
    return family_style(_family(name))


def _num(value) -> float:
    return np.nan if value is None else float(value)


def _on_scale(value) -> float:
    """A CI bound drawn on the 0–100 MUSHRA scale (a Student-t bound past it ends at the scale's end)."""
    return float(np.clip(_num(value), 0.0, 100.0))


@_styled
def mushra_figure(report: dict) -> Figure | None:
    """MUSHRA mean score with 95 % CI per condition (bounds kept within 0–100), best at the top, from
    ``mushra_report``. None without conditions."""
    conditions = report.get("conditions") or {}
    if not conditions:
        return None
    order = sorted(conditions, key=lambda c: -np.nan_to_num(_num(conditions[c]["mean"]), nan=-np.inf))
    stats = [conditions[c] for c in order]
    labels = _wrap([_condition_label(c, report.get("labels")) for c in order])
    title = f"MUSHRA: mean and 95 % CI, {report.get('assessors', '?')} assessors"
    fig, ax = _figure(*_rows_size(labels, title))
    _dot_whisker(ax, labels, [_num(s["mean"]) for s in stats],
                 [_on_scale(s["ci_low"]) for s in stats], [_on_scale(s["ci_high"]) for s in stats],
                 [_condition_style(c) for c in order], [False] * len(order), [f"condition:{c}" for c in order])
    ax.set_xlim(-2, 102)  # room for markers at 0 and 100
    ax.set_xlabel("MUSHRA score (0–100), ↑ better")
    ax.set_ylabel("condition")
    ax.set_title(title)
    return fig


def _condition_looks(names: list[str]) -> dict[str, tuple[FamilyStyle, str]]:
    """Family style plus a hatch that tells apart conditions of one family (for bars with a legend)."""
    seen: dict[str, int] = {}
    looks = {}
    for name in names:
        style = _condition_style(name)
        k = seen[style.color] = seen.get(style.color, -1) + 1
        looks[name] = (style, ["", "////", "....", "xxxx", "\\\\\\\\"][k % 5])
    return looks


@_styled
def mushra_items_figure(report: dict) -> Figure | None:
    """MUSHRA mean score with 95 % CI per item, one bar per condition in each item's group (two columns wide).
    None without items."""
    items = report.get("items") or {}
    if not items:
        return None
    names = list(report.get("conditions") or {})
    names += sorted({c for cs in items.values() for c in cs} - set(names))
    looks = _condition_looks(names)
    width = 0.8 / len(names)
    fig, ax = _figure(HEIGHT_IN + _legend_height(len(names), 2), width=2 * COLUMN_IN)
    for k, name in enumerate(names):
        xs = [i for i, item in enumerate(items) if name in items[item]]
        s = [items[item][name] for item in items if name in items[item]]
        mean = np.array([_num(v["mean"]) for v in s])
        err = np.clip(np.nan_to_num([mean - [_on_scale(v["ci_low"]) for v in s],
                                     np.array([_on_scale(v["ci_high"]) for v in s]) - mean], nan=0.0), 0, None)
        style, hatch = looks[name]
        ax.bar(np.array(xs) + (k - (len(names) - 1) / 2) * width, mean, width * 0.92, yerr=err,
               color=style.color, alpha=0.85, hatch=hatch, edgecolor="white", linewidth=0.3,
               error_kw={"elinewidth": 0.7, "capsize": 1.5}, label=_condition_label(name, report.get("labels")))
    ax.set_xticks(range(len(items)), list(items))
    ax.set_ylim(0, 105)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("item")
    ax.set_ylabel("MUSHRA score (0–100), ↑ better")
    ax.set_title("MUSHRA per item: mean and 95 % CI over assessors")
    _finish(fig, ax, False, ncols=2)
    return fig


@_styled
def mushra_box_figure(ratings: list, labels: dict[str, str] | None = None) -> Figure | None:
    """Distribution of MUSHRA scores per condition (box: quartiles, whiskers 1.5 IQR, white diamond: mean),
    best median at the top, from ``Rating`` records (conditions by the test's ``labels`` where given). None
    without ratings."""
    if not ratings:
        return None
    scores: dict[str, list[float]] = {}
    for r in ratings:
        scores.setdefault(r.condition, []).append(float(r.score))
    order = sorted(scores, key=lambda c: (-np.median(scores[c]), c))[::-1]  # boxplot fills bottom up
    names = labels
    labels = _wrap([_condition_label(c, names) for c in order])
    title = f"MUSHRA score distribution, {len({r.assessor for r in ratings})} assessors"
    fig, ax = _figure(*_rows_size(labels, title, per_line=0.17))
    boxes = ax.boxplot([scores[c] for c in order], orientation="horizontal", tick_labels=labels,
                       patch_artist=True, widths=0.6, showmeans=True,
        medianprops={"color": "black", "linewidth": 1.0},
        meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black", "markersize": 3.5},
        flierprops={"marker": "o", "markersize": 2.5, "alpha": 0.6})
    for patch, median, name in zip(boxes["boxes"], boxes["medians"], order, strict=True):
        patch.set(facecolor=_condition_style(name).color, alpha=0.55, gid=f"condition:{name}")
        median.set_gid(f"median:{name}")
    ax.set_xlim(-2, 102)  # room for markers at 0 and 100
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("MUSHRA score (0–100), ↑ better")
    ax.set_ylabel("condition")
    ax.set_title(title)
    return fig


@_styled
def ab_figure(report: dict) -> Figure | None:
    """AB: share of decisive answers preferring the first condition, with its 95 % Wilson interval and the
    50 % no-preference line. ABX: proportion of correct identifications against the 50 % chance line. From
    ``choices_report``; None without pairs."""
    pairs = report.get("pairs") or []
    if not pairs:
        return None
    abx = report.get("design") == "abx"
    given = report.get("labels")
    labels = [_wrap([_condition_label(p["a"], given)])[0] + "\nvs " + _wrap([_condition_label(p["b"], given)])[0]
              + "\n"
              + (f"(n = {p['n']}, p = {_num(p['p']):.2g})" if p["share"] is not None else
                 f"(n = {p['n']}, no decisive answer)") for p in pairs]
    title = ("ABX discrimination" if abx else "AB preference") + ", 95 % Wilson CI"
    fig, ax = _figure(*_rows_size(labels, title, extra=1.2))
    ax.axvline(50, color=GREY, ls="--", lw=0.8, label="chance (50 %)" if abx else "no preference (50 %)",
               gid="chance")
    _dot_whisker(ax, labels, [100 * _num(p["share"]) for p in pairs], [100 * _num(p["ci_low"]) for p in pairs],
                 [100 * _num(p["ci_high"]) for p in pairs], [family_style(REFERENCE_SPEC)] * len(pairs),
                 [False] * len(pairs), [f"pair:{p['a']}|{p['b']}" for p in pairs])
    ax.set_xlim(-2, 102)  # room for markers at 0 and 100
    ax.set_xlabel("correct identifications (%)" if abx else "first of the pair preferred (% of decisive)")
    ax.set_ylabel("condition pair")
    ax.set_title(title)
    _finish(fig, ax, False)
    return fig


@_styled
def correlation_figure(points: pd.DataFrame, metric: str, unit: str,
                       labels: dict[str, str] | None = None) -> Figure | None:
    """MUSHRA mean per (item, condition) against the metric's value, one colour and marker per condition (by
    the test's ``labels`` where given), Pearson r and Spearman ρ in the title. ``points`` has
    ``listening_mean``, ``metric_value``, ``condition`` and ``item``. None without points."""
    from evalkit.stats.correlation import pearson, spearman

    if points.empty:
        return None
    names = sorted(points["condition"].unique())
    looks = _condition_looks(names)
    markers = "osv^DPXh"
    fig, ax = _figure(HEIGHT_IN + _legend_height(len(names)))
    for name in names:
        group = points[points["condition"] == name]
        style, _ = looks[name]
        ax.scatter(group["metric_value"], group["listening_mean"], color=style.color, s=16,
                   marker=markers[names.index(name) % len(markers)], label=_condition_label(name, labels),
                   gid=f"condition:{name}")
    from evalkit.metrics import ALL_INFO

    hib = ALL_INFO[metric].higher_is_better if metric in ALL_INFO else None
    r, rho = pearson(points["metric_value"], points["listening_mean"]), spearman(points["metric_value"],
                                                                                 points["listening_mean"])
    stats = f"n = {r.n}: {r.reason}" if r.reason else \
        f"Pearson r = {r.value:.2f}, Spearman ρ = {rho.value:.2f}, n = {r.n}"
    ax.set_xlabel(metric_label(metric, unit, hib, width=34))
    ax.set_ylabel("MUSHRA mean (0–100), ↑ better")
    ax.set_title(f"MUSHRA against {metric_name(metric)}\n{stats}", fontsize=8)
    _finish(fig, ax, False)
    return fig
