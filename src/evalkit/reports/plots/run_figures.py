"""Figures of a run (:class:`~evalkit.reports.rundata.RunData`): a metric against bitrate, per codec variant and
against the kept KLT dimension; codebook perplexity and utilisation per stage; KLT eigen-spectra. Each is a pure
function, data in, a ``Figure`` out, or ``None`` when there is nothing to plot. Data artists carry a ``gid`` (an
SVG id) saying what they show: ``family:opus``, ``anchor:SPEC``, ``perplexity:SPEC``...
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, NullLocator

from evalkit.reports.plots.style import (
    GREY,
    HEIGHT_IN,
    OKABE_ITO,
    RANDOM_FLAG,
    _dot_whisker,
    _figure,
    _finish,
    _legend_height,
    _rows_size,
    _styled,
    _wrap,
    anchor_label,
    distinct_styles,
    family_style,
    metric_label,
    metric_name,
)
from evalkit.reports.rundata import REFERENCE_SPEC, RunData
from evalkit.runner.reader import CurveKind, VariantRole, curve_parts


def _yerr(rows: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bars from ``ci_low``/``ci_high`` around ``mean``; a missing bound draws no bar."""
    mean = rows["mean"].to_numpy(float)
    low = np.nan_to_num(mean - rows["ci_low"].to_numpy(float), nan=0.0)
    high = np.nan_to_num(rows["ci_high"].to_numpy(float) - mean, nan=0.0)
    return np.clip(np.vstack([low, high]), 0, None)


def _metric_rows(data: RunData, metric: str) -> pd.DataFrame:
    if metric not in data.metrics:
        raise ValueError(f"metric {metric!r} is not in the run's summary; the run's metrics: "
                         f"{', '.join(data.metrics) or 'none'}")
    return data.summary[data.summary["metric"] == metric]


def _metric_info(rows: pd.DataFrame, metric: str) -> tuple[str, bool | None]:
    units = rows["unit"].dropna() if "unit" in rows else pd.Series(dtype=object)
    hib = rows["higher_is_better"].dropna() if "higher_is_better" in rows else pd.Series(dtype=object)
    if not units.empty and not hib.empty:
        return str(units.iloc[0]), bool(hib.iloc[0])
    from evalkit.metrics import ALL_INFO

    info = ALL_INFO.get(metric)
    return (info.unit, info.higher_is_better) if info else ("", None)


def _family_key(family: str) -> tuple[str, str]:
    """Sort key of a rate–quality family that puts a KLT family right after its base codec's family."""
    parts = curve_parts(family)
    if parts.kind is CurveKind.KLT:
        return parts.base, family
    return family, ""


def _is_line(data: RunData, spec: str) -> bool:
    """Whether a variant is drawn as a horizontal line: the reference or a low-pass anchor."""
    return spec == REFERENCE_SPEC or data.role(spec) is VariantRole.ANCHOR


def _cutoff(data: RunData, spec: str) -> float:
    cutoff = data.record(spec).anchor_cutoff_hz
    return float("inf") if cutoff is None else cutoff


def _bitrate_axis(ax, values: np.ndarray) -> None:
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    fine = [0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 320]
    nice = fine if hi / lo < 24 else [v for v in fine if v in (0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)]
    ticks = [v for v in nice if lo / 1.25 <= v <= hi * 1.25]
    if len(ticks) < 2:  # outside the nice values (a PCM rate): the measured ends, 3 significant digits
        ticks = sorted({float(f"{lo:.3g}"), float(f"{hi:.3g}")})
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.35, hi * 1.35)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(_plain))  # "8", "16", "1411", never "6×10²"
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _plain(value: float, _pos=None) -> str:
    """A tick of a log bitrate axis as a plain number.

    >>> _plain(8.0), _plain(0.5), _plain(1411.2), _plain(600.0)
    ('8', '0.5', '1411.2', '600')
    """
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"


def _reference_lines(ax, rows: pd.DataFrame, data: RunData) -> None:
    """Anchors (``lowpass``) and the uncoded reference as labelled horizontal lines."""
    refs = rows[rows["codec_spec"].map(lambda s: _is_line(data, s))]
    styles = [":", "--", (0, (1, 3))]
    order = sorted(refs.itertuples(), key=lambda r: (r.codec_spec == REFERENCE_SPEC, _cutoff(data, r.codec_spec),
                                                     r.codec_spec))
    for i, row in enumerate(order):
        if not np.isfinite(row.mean):
            continue
        is_ref = row.codec_spec == REFERENCE_SPEC
        ax.axhline(row.mean, color=OKABE_ITO["black"] if is_ref else GREY, lw=0.9,
                   ls="-." if is_ref else styles[i % len(styles)], label=anchor_label(row.codec_spec),
                   gid=f"anchor:{row.codec_spec}", zorder=1)


@_styled
def rate_quality_figure(data: RunData, metric: str, legend: bool = True) -> Figure | None:
    """Mean of ``metric`` (95 % CI bars) against measured bitrate (log x), one line per family; low-pass
    anchors and the uncoded reference as horizontal lines. A family with random and pretrained variants gets
    two lines (gids ``family:NAME`` and ``family:NAME+random``). None when no variant with a bitrate has the
    metric. ``legend=False``: a panel of a small-multiples grid, whose legend is shared (the artists keep
    their labels, see :func:`~evalkit.reports.plots.style.legend_entries`).

    Raises:
        ValueError: ``metric`` is not in the run's summary (the message lists the run's metrics).
    """
    rows = _metric_rows(data, metric)
    rq = data.rate_quality
    points = rq[(rq["metric"] == metric) & (rq["bitrate_kbps"] > 0)] if not rq.empty else rq
    if points.empty:
        return None
    points = points.assign(random=points["codec_spec"].isin(data.random_specs))
    groups = sorted(points.groupby(["family", "random"]), key=lambda g: (_family_key(g[0][0]), g[0][1]))
    n_refs = int(rows["codec_spec"].map(lambda s: _is_line(data, s)).sum())
    extra = _legend_height(len(groups) + n_refs) + 0.2 * bool(points["random"].any()) if legend else 0.0
    fig, ax = _figure(HEIGHT_IN + extra)
    styles = distinct_styles([family_style(family) for (family, _), _ in groups])
    for ((family, random), group), style in zip(groups, styles, strict=True):
        group = group.sort_values("bitrate_kbps")
        x, y = group["bitrate_kbps"].to_numpy(float), group["mean"].to_numpy(float)
        ax.errorbar(x, y, yerr=_yerr(group), fmt="none", ecolor=style.color, elinewidth=0.8, zorder=2)
        ax.plot(x, y, color=style.color, marker=style.marker, ls=style.linestyle, mfc="white" if random else
                style.color, label=style.label + (RANDOM_FLAG if random else ""),
                gid=f"family:{family}" + ("+random" if random and "weights=random" not in family else ""), zorder=3)
    _reference_lines(ax, rows, data)
    _bitrate_axis(ax, points["bitrate_kbps"].to_numpy(float))
    unit, hib = _metric_info(rows, metric)
    ax.set_xlabel("measured bitrate (kbps, log scale)")
    ax.set_ylabel(metric_label(metric, unit, hib, width=34))
    ax.set_title(_wrap([f"{metric_name(metric)} against bitrate (mean, 95 % CI)"], 44)[0] if legend
                 else metric_name(metric))  # wrapped: a title wider than the figure would be cut off
    if legend:
        _finish(fig, ax, bool(points["random"].any()))
    return fig


def _bitrates(data: RunData) -> dict[str, float]:
    return data.bitrates


def _ordered(specs, data: RunData) -> list[str]:
    rates = _bitrates(data)
    return sorted(set(specs), key=lambda s: (_family_key(data.record(s).curve),
                                             np.nan_to_num(rates.get(s, np.nan), nan=np.inf), s))


def _cardinalities(data: RunData) -> dict[str, float]:
    """Codebook size per spec: the units' ``cardinality``, else codes used / utilisation."""
    usage = data.codebook_usage
    found = {}
    if not data.units.empty and "cardinality" in data.units:
        found = data.units.dropna(subset=["cardinality"]).groupby("codec_spec")["cardinality"].max().to_dict()
    for spec, group in usage[usage["utilisation"] > 0].groupby("codec_spec"):
        found.setdefault(spec, float(np.round(np.median(group["codes_used"] / group["utilisation"]))))
    return {s: k for s, k in found.items() if s in set(usage["codec_spec"])}


def _code_lines(ax, data: RunData, column: str, scale: float = 1.0, label: bool = True) -> None:
    """One line per variant with codes of ``column`` (times ``scale``) against codebook index k = 1, 2, ..."""
    usage = data.codebook_usage
    specs = _ordered(usage["codec_spec"], data)
    styles = distinct_styles([family_style(data.record(spec).curve) for spec in specs])  # one look per variant
    for spec, style in zip(specs, styles, strict=True):
        group = usage[usage["codec_spec"] == spec].sort_values("codebook")
        random = spec in data.random_specs
        ax.plot(group["codebook"].to_numpy(int) + 1, group[column].to_numpy(float) * scale, color=style.color,
                marker=style.marker, ls=style.linestyle, mfc="white" if random else style.color,
                label=data.label(spec) if label else "_nolegend_", gid=f"{column}:{spec}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


@_styled
def perplexity_figure(data: RunData) -> Figure | None:
    """Perplexity (2^entropy, in codes) of each codebook against its index k (RVQ stage), every variant with
    codes on one plot, codebook size K as a dashed ceiling. None when no variant emits codes."""
    usage = data.codebook_usage
    if usage.empty:
        return None
    sizes = sorted(set(_cardinalities(data).values()))
    n = usage["codec_spec"].nunique() + len(sizes)
    random = bool(set(usage["codec_spec"]) & data.random_specs)
    fig, ax = _figure(HEIGHT_IN + _legend_height(n) + 0.2 * random)
    _code_lines(ax, data, "perplexity")
    for k in sizes:
        ax.axhline(k, color=OKABE_ITO["black"], ls="--", lw=0.8, label=f"codebook size K = {k:g}",
                   gid=f"ceiling:{k:g}")
    ax.set_yscale("log")
    ax.set_xlabel("codebook index k (RVQ stage)")
    ax.set_ylabel("perplexity (codes, $2^H$)")
    ax.set_title("Codebook perplexity per stage")
    _finish(fig, ax, random)
    return fig


@_styled
def codebook_usage_figure(data: RunData) -> Figure | None:
    """Per-codebook perplexity (top) and utilisation, the share of the K codes used at least once (bottom).
    None when no variant emits codes."""
    usage = data.codebook_usage
    if usage.empty:
        return None
    random = bool(set(usage["codec_spec"]) & data.random_specs)
    n = usage["codec_spec"].nunique()
    fig, (top, bottom) = _figure(2 * HEIGHT_IN - 0.6 + _legend_height(n) + 0.2 * random, nrows=2, sharex=True)
    _code_lines(top, data, "perplexity")
    _code_lines(bottom, data, "utilisation", scale=100.0, label=False)
    top.set_yscale("log")
    top.set_ylabel("perplexity (codes, $2^H$)")
    top.set_title("Codebook usage per stage")
    bottom.set_ylim(0, 105)
    bottom.set_ylabel("utilisation (% of K used)")
    bottom.set_xlabel("codebook index k (RVQ stage)")
    _finish(fig, top, random)
    return fig


def _kept_dim(data: RunData, spec: str, full_dims: dict[str, float], fallback: float = np.nan) -> float:
    dim = data.record(spec).kept_dim or "full"
    return float(dim) if dim.isdigit() else float(full_dims.get(spec, fallback))


@_styled
def klt_spectrum_figure(data: RunData) -> Figure | None:
    """KLT eigenvalues against index (log y, top) and the variance kept against the kept dimension d̃
    (bottom), with each KLT variant's d̃ marked. Variants sharing a spectrum (same base and statistics, other
    d̃) share a line. None when the run has no KLT variant."""
    spectra = data.klt_spectra
    if spectra.empty:
        return None
    groups: dict[tuple, list[str]] = {}
    for spec in sorted(spectra["codec_spec"].unique()):
        eig = spectra[spectra["codec_spec"] == spec].sort_values("index")["eigenvalue"].to_numpy(float)
        groups.setdefault(tuple(np.round(eig, 12)), []).append(spec)
    random = bool(set(spectra["codec_spec"]) & data.random_specs)
    fig, (top, bottom) = _figure(2 * HEIGHT_IN - 0.6 + _legend_height(len(groups)) + 0.2 * random, nrows=2)
    for specs in groups.values():
        g = spectra[spectra["codec_spec"] == specs[0]].sort_values("index")
        record = data.record(specs[0])
        style, is_random = family_style(record.base.curve), specs[0] in data.random_specs
        per_channel = bool(set(specs) & data.per_channel_specs)  # the base's nominal rate is per channel
        label = f"{record.base.label_for(per_channel)}, {record.statistics} statistics"
        eig = g["eigenvalue"].to_numpy(float)
        top.plot(g["index"], np.where(eig > 0, eig, np.nan), color=style.color, ls="-",
                 label=label + (RANDOM_FLAG if is_random and RANDOM_FLAG not in label else ""),
                 gid=f"spectrum:{specs[0]}")
        share = g["cumulative_share"].to_numpy(float) * 100
        bottom.plot(g["index"], share, color=style.color, gid=f"kept:{specs[0]}")
        for spec in specs:
            d = _kept_dim(data, spec, {}, fallback=len(g))
            kept = float(np.interp(d, g["index"], share))
            bottom.plot([d], [kept], marker="o", color=style.color, ls="none", gid=f"dim:{spec}")
            bottom.annotate(f"$\\tilde{{d}}$ = {d:g}: {kept:.1f} %", (d, kept), xytext=(4, -11),
                            textcoords="offset points", fontsize=8)
    top.set_yscale("log")
    top.set_xlabel("eigenvalue index i (largest first)")
    top.set_ylabel("eigenvalue (latent variance)")
    top.set_title("KLT eigen-spectrum of the latent")
    bottom.set_xlabel("kept dimensions $\\tilde{d}$")
    bottom.set_ylabel("variance kept (%)")
    _finish(fig, top, random)
    return fig


@_styled
def klt_metric_figure(data: RunData, metric: str) -> Figure | None:
    """Mean ``metric`` (95 % CI) against the kept KLT dimension d̃, one line per base codec, the base itself
    (all D dimensions, no KLT) as a star where the run has it. None when no KLT variant has the metric.

    Raises:
        ValueError: ``metric`` is not in the run's summary.
    """
    rows = _metric_rows(data, metric)
    klt = rows[rows["codec_spec"].map(lambda s: data.record(s).kept_dim is not None)]
    if klt.empty:
        return None
    acc = data.klt_accounting
    full = dict(zip(acc["codec_spec"], acc["full_dim"], strict=True)) if not acc.empty else {}
    klt = klt.assign(base=klt["codec_spec"].map(lambda s: data.record(s).base.codec_spec),
                     dim=klt["codec_spec"].map(lambda s: _kept_dim(data, s, full)))
    random = bool(set(klt["codec_spec"]) & data.random_specs)
    bases = sorted(klt["base"].unique())
    fig, ax = _figure(HEIGHT_IN + _legend_height(2 * len(bases)) + 0.2 * random)
    for base in bases:
        group = klt[klt["base"] == base].dropna(subset=["dim"]).sort_values("dim")  # dim=full needs D
        base_record = data.record(group["codec_spec"].iloc[0]).base if not group.empty else data.record(base)
        style = family_style(base_record.curve)
        is_random = bool(set(group["codec_spec"]) & data.random_specs)
        base_label = base_record.label_for(bool(set(group["codec_spec"]) & data.per_channel_specs))
        label = base_label + (RANDOM_FLAG if is_random and RANDOM_FLAG not in base_label else "")
        ax.errorbar(group["dim"], group["mean"], yerr=_yerr(group), fmt="none", ecolor=style.color, elinewidth=0.8)
        ax.plot(group["dim"], group["mean"], color=style.color, marker=style.marker, ls="--",
                mfc="white" if is_random else style.color, label=f"{label}, KLT", gid=f"klt:{base}")
        own = rows[rows["codec_spec"] == base]
        dims = [full[s] for s in group["codec_spec"] if s in full]
        if not own.empty and dims:
            bars = ax.errorbar([max(dims)], own["mean"], yerr=_yerr(own), fmt="*", color=style.color, ms=8,
                               elinewidth=0.8, label=f"{label}, no KLT (D = {max(dims):g})")
            bars.lines[0].set_gid(f"base:{base}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    unit, hib = _metric_info(rows, metric)
    ax.set_xlabel("kept dimensions $\\tilde{d}$ (of D)")
    ax.set_ylabel(metric_label(metric, unit, hib, width=34))
    ax.set_title(_wrap([f"{metric_name(metric)} against the kept dimension"], 44)[0])
    _finish(fig, ax, random)
    return fig


def _variant_order(rows: pd.DataFrame, data: RunData) -> list[str]:
    """Anchors, then codecs by family and bitrate, the reference last (the order of the report's tables)."""
    rates = rows.drop_duplicates("codec_spec").set_index("codec_spec")["bitrate_kbps"]

    def key(spec: str):
        record = data.record(spec)
        kind = 2 if spec == REFERENCE_SPEC else 0 if record.role is VariantRole.ANCHOR else 1
        cutoff = _cutoff(data, spec) if kind == 0 else float("inf")
        klt_dim = _kept_dim(data, spec, {}, fallback=np.inf) if record.kept_dim is not None else 0.0
        return kind, _family_key(record.curve), np.nan_to_num(rates[spec], nan=np.inf), cutoff, klt_dim, spec
    return sorted(rates.index, key=key)


@_styled
def metric_figure(data: RunData, metric: str, legend: bool = True) -> Figure | None:
    """Mean ``metric`` with its 95 % CI per codec variant (dot and whisker), anchors (grey squares) first, then
    codecs by family and bitrate (KLT variants after their base), the reference (black diamond) last; hollow
    markers and "(random weights)" for random weights. None without rows. ``legend=False``: a panel of a
    small-multiples grid (no random-weights headline: the labels and the page say it).

    Raises:
        ValueError: ``metric`` is not in the run's summary.
    """
    rows = _metric_rows(data, metric)
    if rows.empty:
        return None
    order = _variant_order(rows, data)
    by_spec = rows.drop_duplicates("codec_spec").set_index("codec_spec").loc[order]
    random = [s in data.random_specs for s in order]
    labels = [anchor_label(s) if s == REFERENCE_SPEC else data.label(s) for s in order]
    labels = _wrap([lab + (RANDOM_FLAG if r and RANDOM_FLAG.strip() not in lab else "") for lab, r in zip(
        labels, random, strict=True)])
    styles = [family_style(REFERENCE_SPEC if s == REFERENCE_SPEC else data.record(s).curve) for s in order]
    title = f"{metric_name(metric)} (mean, 95 % CI)"
    height, width = _rows_size(labels, title)
    fig, ax = _figure(height + 0.2 * (any(random) and legend), width=width)
    _dot_whisker(ax, labels, by_spec["mean"], by_spec["ci_low"], by_spec["ci_high"], styles, random,
                 [f"variant:{s}" for s in order], rules=True)
    unit, hib = _metric_info(rows, metric)
    ax.set_xlabel(metric_label(metric, unit, hib, width=30))
    ax.set_ylabel("codec variant")
    ax.set_title(title)
    _finish(fig, ax, any(random) and legend)
    return fig
