"""Paper-quality figures of a run and of a listening test: pure functions, data in, a ``matplotlib`` ``Figure``
out, or ``None`` when there is nothing to plot; then writers (PNG at 200 dpi, SVG, PDF, inline SVG, PNG data URI).

Figures are ``Figure`` objects built without pyplot, inside a temporary rc context (:data:`STYLE`): matplotlib's
bundled DejaVu fonts, 8 pt text, 3.5 in wide (one journal column). Colours are the colour-blind-safe Okabe–Ito
palette and every codec family keeps one colour and marker (:func:`family_style`) in every figure. Variants with
random weights have hollow markers, "(random weights)" in their label and :data:`RANDOM_NOTE` as the
figure's headline. Data artists carry a ``gid`` (an SVG id) saying what they show: ``family:opus``, ``anchor:SPEC``,
``perplexity:SPEC``...
"""

from __future__ import annotations

import base64
import io
import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from evalkit.analysis.rate_quality import rate_family
from evalkit.codecs.spec import SpecError, format_value, split_spec
from evalkit.listening.model import ANCHOR_LOW, ANCHOR_MID
from evalkit.listening.model import REFERENCE as HIDDEN_REFERENCE
from evalkit.reports.rundata import ANCHOR_FAMILY, REFERENCE_SPEC, RunData

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
GREY = "#7A7A7A"  # anchors: neutral, no family's colour
COLUMN_IN = 3.5  # single journal column
HEIGHT_IN = 2.6
PNG_DPI = 200
FIGURE_FORMATS = (".png", ".svg", ".pdf")
RANDOM_FLAG = " (random weights)"
RANDOM_NOTE = "random weights: not a pretrained model"
STYLE = {
    "font.family": "DejaVu Sans", "mathtext.fontset": "dejavusans", "font.size": 8, "axes.titlesize": 9,
    "axes.labelsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8,
    "figure.titlesize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.linewidth": 0.4, "grid.alpha": 0.35, "axes.linewidth": 0.6, "lines.linewidth": 1.2,
    "lines.markersize": 4.5, "legend.frameon": False, "legend.handlelength": 2.2, "errorbar.capsize": 2,
    "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO.values())),
    "svg.hashsalt": "evalkit", "pdf.fonttype": 42, "ps.fonttype": 42,
}
# family -> (legend label, colour, marker); variants of one model family share the colour
_FAMILY_STYLES = {
    "encodec-24khz": ("EnCodec 24 kHz", "blue", "o"), "encodec-48khz": ("EnCodec 48 kHz", "blue", "s"),
    "dac-44khz": ("DAC 44.1 kHz", "vermillion", "o"), "dac-24khz": ("DAC 24 kHz", "vermillion", "^"),
    "dac-16khz": ("DAC 16 kHz", "vermillion", "v"),
    "dac-44khz-16kbps": ("DAC 44.1 kHz (16 kbps model)", "vermillion", "s"),
    "qincodec": ("QinCodec", "green", "D"), "qincodec-rvq": ("QinCodec RVQ baseline", "purple", "v"),
    "opus": ("Opus", "orange", "P"), "aac": ("AAC", "black", "X"), "mp3": ("MP3", "sky_blue", "h"),
}
_KLT_MARKERS = "dp*<>"
_CONDITION_NAMES = {HIDDEN_REFERENCE: "hidden reference", ANCHOR_LOW: "3.5 kHz low-pass (anchor)",
                    ANCHOR_MID: "7 kHz low-pass (anchor)"}


@dataclass(frozen=True)
class FamilyStyle:
    """How one codec family is drawn in every figure."""

    label: str
    color: str
    marker: str
    linestyle: str = "-"


def family_style(family: str) -> FamilyStyle:
    """Legend label, colour, marker and line style of a rate–quality family (see ``rate_family``).

    KLT families take their base's colour with a dashed line; unknown families get a stable palette colour.

    >>> family_style("opus").label, family_style("klt:encodec-24khz:dim=64").linestyle
    ('Opus', '--')
    """
    if family.startswith("klt:"):
        _, base, dim = (family.split(":", 2) + ["", ""])[:3]
        b = family_style(base)
        marker = _KLT_MARKERS[zlib.crc32(dim.encode()) % len(_KLT_MARKERS)]
        return FamilyStyle(f"{b.label}, KLT $\\tilde{{d}}$ = {dim.removeprefix('dim=')}", b.color, marker, "--")
    if family == ANCHOR_FAMILY:
        return FamilyStyle("low-pass anchor", GREY, "s", ":")
    if family == REFERENCE_SPEC:
        return FamilyStyle("reference", OKABE_ITO["black"], "D", "-.")
    if family in _FAMILY_STYLES:
        label, color, marker = _FAMILY_STYLES[family]
        return FamilyStyle(label, OKABE_ITO[color], marker)
    palette = [c for k, c in OKABE_ITO.items() if k != "yellow"]  # yellow is too light for lines on white
    return FamilyStyle(family, palette[zlib.crc32(family.encode()) % len(palette)], "o")


def _family(spec: str) -> str:
    try:
        return rate_family(spec)
    except SpecError:
        return spec


def _token(key: str, value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None and (key.endswith("_kbps") or key == "bandwidth"):
        return f"{number:g} kbps"
    if number is not None and key.endswith("_hz"):
        return f"{number / 1000:g} kHz" if number >= 1000 else f"{number:g} Hz"
    if key in ("checkpoint", "calibration", "weights") and "/" in value:
        value = Path(value).name  # a path: its file name is enough to tell variants apart
    return f"{key}={value}"


def _describe(family: str, raw: dict[str, str]) -> str:
    from evalkit.codecs import FAMILIES

    params = {p.name: p for p in FAMILIES[family].params} if family in FAMILIES else {}
    random = raw.get("weights") == "random"
    tokens: list[tuple[bool, str]] = []
    for key, value in raw.items():
        p = params.get(key)
        if key in ("weights", "seed") and random:
            continue
        if key == "n_steps" and "bitrate_kbps" in raw:
            continue  # QinCodec's canonical specs fill n_steps from the bitrate: the same fact twice
        if p is not None and not p.sweep and value == format_value(p.default):
            continue
        tokens.append((not (p is not None and p.sweep), _token(key, value)))
    text = " ".join([family, ", ".join(t for _, t in sorted(tokens, key=lambda t: t[0]))]).strip()
    if random:
        seed = raw.get("seed", "0")
        text += f" (random weights{'' if seed == '0' else f', seed {seed}'})"
    return text


def _klt_parts(spec: str) -> tuple[str, str, dict[str, str]]:
    """(base spec, kept dim text, the klt family's own other parameters) of a ``klt?...`` spec."""
    from evalkit.codecs import FAMILIES

    _, raw = split_spec(spec)
    own = {p.name for p in FAMILIES["klt"].params}
    base_family = raw.get("base", format_value(FAMILIES["klt"].defaults["base"]))
    base_raw = {k: v for k, v in sorted(raw.items()) if k not in own}
    base = base_family + ("?" + "&".join(f"{k}={v}" for k, v in base_raw.items()) if base_raw else "")
    return base, raw.get("dim", "full"), {k: v for k, v in raw.items() if k in own - {"base", "dim"}}


def short_label(spec: str) -> str:
    """A readable label of a codec spec: bitrate-setting parameters with units, then the parameters that differ
    from the family's defaults; random weights as a suffix; KLT variants as ``BASE, KLT dim=D``. Text that is
    not a spec comes back unchanged.

    >>> short_label("opus?application=audio&bitrate_kbps=12"), short_label("lowpass?cutoff_hz=3500")
    ('opus 12 kbps', 'lowpass 3.5 kHz')
    >>> short_label("encodec-24khz?bandwidth=1.5&seed=0&weights=random")
    'encodec-24khz 1.5 kbps (random weights)'
    """
    try:
        family, raw = split_spec(spec)
        if family != "klt":
            return _describe(family, raw)
        from evalkit.codecs import FAMILIES

        base, dim, own = _klt_parts(spec)
        defaults = {k: format_value(v) for k, v in FAMILIES["klt"].defaults.items()}
        extra = [_token(k, v) for k, v in own.items() if v != defaults.get(k)]
        base_family, base_raw = split_spec(base)
        head = _describe(base_family, base_raw)
        return f"{head}, KLT dim={dim}" + (f" ({', '.join(extra)})" if extra else "")
    except SpecError:
        return spec


def anchor_label(spec: str) -> str:
    """``lowpass?cutoff_hz=3500`` → ``3.5 kHz low-pass``; the reference → ``reference (uncoded)``."""
    if spec == REFERENCE_SPEC:
        return "reference (uncoded)"
    cutoff = split_spec(spec)[1].get("cutoff_hz")
    return f"{float(cutoff) / 1000:g} kHz low-pass" if cutoff else short_label(spec)


def metric_label(metric: str, unit: str, higher_is_better: bool | None, width: int = 44) -> str:
    """Axis label ``metric (unit), ↑ better`` wrapped at ``width`` characters.

    >>> metric_label("si_sdr", "dB", True)
    'si_sdr (dB), ↑ better'
    """
    arrow = "" if higher_is_better is None else ", ↑ better" if higher_is_better else ", ↓ better"
    text = f"{metric} ({unit}){arrow}" if unit else f"{metric}{arrow}"
    return textwrap.fill(text, width, break_long_words=False)


def _styled(make: Callable) -> Callable:
    @wraps(make)
    def inner(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return make(*args, **kwargs)
    return inner


def _figure(height: float = HEIGHT_IN, width: float = COLUMN_IN, nrows: int = 1, **kwargs):
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False, **kwargs)[:, 0]
    return fig, (axes[0] if nrows == 1 else list(axes))


def _finish(fig: Figure, handles_from, random: bool, ncols: int = 1) -> None:
    """Legend under the axes; the random-weights note as the figure's headline (both laid out by matplotlib)."""
    handles, labels = handles_from.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols)
    if random:
        fig.suptitle(RANDOM_NOTE, color=OKABE_ITO["vermillion"], fontstyle="italic", fontsize=8)


def _legend_height(n: int, ncols: int = 1) -> float:
    return 0.17 * -(-n // ncols)


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
    if family.startswith("klt:"):
        return family.split(":")[1], family
    return family, ""


def _bitrate_axis(ax, values: np.ndarray) -> None:
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    fine = [0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 320]
    nice = fine if hi / lo < 24 else [v for v in fine if v in (0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)]
    ticks = [v for v in nice if lo / 1.25 <= v <= hi * 1.25] or [lo]
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.35, hi * 1.35)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def _reference_lines(ax, rows: pd.DataFrame) -> None:
    """Anchors (``lowpass``) and the uncoded reference as labelled horizontal lines."""
    refs = rows[rows["codec_spec"].map(lambda s: s == REFERENCE_SPEC or _family(s) == ANCHOR_FAMILY)]
    styles = [":", "--", (0, (1, 3))]
    order = sorted(refs.itertuples(), key=lambda r: (r.codec_spec == REFERENCE_SPEC, float(
        split_spec(r.codec_spec)[1].get("cutoff_hz", "inf")), r.codec_spec))
    for i, row in enumerate(order):
        if not np.isfinite(row.mean):
            continue
        is_ref = row.codec_spec == REFERENCE_SPEC
        ax.axhline(row.mean, color=OKABE_ITO["black"] if is_ref else GREY, lw=0.9,
                   ls="-." if is_ref else styles[i % len(styles)], label=anchor_label(row.codec_spec),
                   gid=f"anchor:{row.codec_spec}", zorder=1)


@_styled
def rate_quality_figure(data: RunData, metric: str) -> Figure | None:
    """Mean of ``metric`` (95 % CI bars) against measured bitrate (log x), one line per family; low-pass
    anchors and the uncoded reference as horizontal lines. A family with random and pretrained variants gets
    two lines (gids ``family:NAME`` and ``family:NAME+random``). None when no variant with a bitrate has the
    metric.

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
    n_refs = int(rows["codec_spec"].map(lambda s: s == REFERENCE_SPEC or _family(s) == ANCHOR_FAMILY).sum())
    fig, ax = _figure(HEIGHT_IN + _legend_height(len(groups) + n_refs) + 0.2 * bool(points["random"].any()))
    for (family, random), group in groups:
        group = group.sort_values("bitrate_kbps")
        style = family_style(family)
        x, y = group["bitrate_kbps"].to_numpy(float), group["mean"].to_numpy(float)
        ax.errorbar(x, y, yerr=_yerr(group), fmt="none", ecolor=style.color, elinewidth=0.8, zorder=2)
        ax.plot(x, y, color=style.color, marker=style.marker, ls=style.linestyle, mfc="white" if random else
                style.color, label=style.label + (RANDOM_FLAG if random else ""),
                gid=f"family:{family}" + ("+random" if random else ""), zorder=3)
    _reference_lines(ax, rows)
    _bitrate_axis(ax, points["bitrate_kbps"].to_numpy(float))
    unit, hib = _metric_info(rows, metric)
    ax.set_xlabel("measured bitrate (kbps, log scale)")
    ax.set_ylabel(metric_label(metric, unit, hib, width=34))
    ax.set_title(f"{metric} against bitrate (mean, 95 % CI)")
    _finish(fig, ax, bool(points["random"].any()))
    return fig


def _bitrates(data: RunData) -> dict[str, float]:
    if data.summary.empty:
        return {}
    return dict(data.summary.drop_duplicates("codec_spec")[["codec_spec", "bitrate_kbps"]].itertuples(index=False))


def _ordered(specs, data: RunData) -> list[str]:
    rates = _bitrates(data)
    return sorted(set(specs), key=lambda s: (_family_key(_family(s)), np.nan_to_num(rates.get(s, np.nan), nan=np.inf),
                                             s))


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
    seen: dict[str, int] = {}
    for spec in _ordered(usage["codec_spec"], data):
        group = usage[usage["codec_spec"] == spec].sort_values("codebook")
        style, random = family_style(_family(spec)), spec in data.random_specs
        k = seen[style.label] = seen.get(style.label, -1) + 1  # variants of one family: solid, dotted, ...
        ls = style.linestyle if style.linestyle != "-" else ["-", ":", "-."][k % 3]
        ax.plot(group["codebook"].to_numpy(int) + 1, group[column].to_numpy(float) * scale, color=style.color,
                marker=style.marker, ls=ls, mfc="white" if random else style.color,
                label=short_label(spec) if label else "_nolegend_", gid=f"{column}:{spec}")
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


def _kept_dim(spec: str, full_dims: dict[str, float], fallback: float = np.nan) -> float:
    dim = _klt_parts(spec)[1]
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
        base, _, own = _klt_parts(specs[0])
        style, is_random = family_style(_family(base)), specs[0] in data.random_specs
        label = f"{short_label(base)}, {own.get('estimator', 'codebook')} statistics"
        eig = g["eigenvalue"].to_numpy(float)
        top.plot(g["index"], np.where(eig > 0, eig, np.nan), color=style.color, ls="-",
                 label=label + (RANDOM_FLAG if is_random and RANDOM_FLAG not in label else ""),
                 gid=f"spectrum:{specs[0]}")
        share = g["cumulative_share"].to_numpy(float) * 100
        bottom.plot(g["index"], share, color=style.color, gid=f"kept:{specs[0]}")
        for spec in specs:
            d = _kept_dim(spec, {}, fallback=len(g))
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
    klt = rows[rows["codec_spec"].map(lambda s: _family(s).startswith("klt:"))]
    if klt.empty:
        return None
    acc = data.klt_accounting
    full = dict(zip(acc["codec_spec"], acc["full_dim"], strict=True)) if not acc.empty else {}
    klt = klt.assign(base=klt["codec_spec"].map(lambda s: _klt_parts(s)[0]),
                     dim=klt["codec_spec"].map(lambda s: _kept_dim(s, full)))
    random = bool(set(klt["codec_spec"]) & data.random_specs)
    bases = sorted(klt["base"].unique())
    fig, ax = _figure(HEIGHT_IN + _legend_height(2 * len(bases)) + 0.2 * random)
    for base in bases:
        group = klt[klt["base"] == base].dropna(subset=["dim"]).sort_values("dim")  # dim=full needs D
        style = family_style(_family(base))
        is_random = bool(set(group["codec_spec"]) & data.random_specs)
        label = short_label(base) + (RANDOM_FLAG if is_random and RANDOM_FLAG not in short_label(base) else "")
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
    ax.set_title(f"{metric} against the kept dimension")
    _finish(fig, ax, random)
    return fig


def _variant_order(rows: pd.DataFrame) -> list[str]:
    """Anchors, then codecs by family and bitrate, the reference last (the order of the report's tables)."""
    rates = rows.drop_duplicates("codec_spec").set_index("codec_spec")["bitrate_kbps"]

    def key(spec: str):
        kind = 2 if spec == REFERENCE_SPEC else 0 if _family(spec) == ANCHOR_FAMILY else 1
        cutoff = split_spec(spec)[1].get("cutoff_hz", "inf") if kind == 0 else "inf"
        klt_dim = _kept_dim(spec, {}, fallback=np.inf) if _family(spec).startswith("klt:") else 0.0
        return kind, _family_key(_family(spec)), np.nan_to_num(rates[spec], nan=np.inf), float(cutoff), klt_dim, spec
    return sorted(rates.index, key=key)


def _wrap(labels: list[str], width: int = 30) -> list[str]:
    return [textwrap.fill(label, width, break_long_words=False) for label in labels]


def _rows_size(labels: list[str], title: str, per_line: float = 0.15, extra: float = 0.95) -> tuple[float, float]:
    """(height, width) in inches of a dot-and-whisker figure: room for the wrapped tick labels and the title."""
    widest = max((len(line) for label in labels for line in label.split("\n")), default=10)
    lines = sum(max(1, label.count("\n") + 1) for label in labels)
    return extra + per_line * lines + 0.06 * len(labels), 0.062 * widest + 0.45 + max(1.85, 0.068 * len(title))


def _dot_whisker(ax, labels: list[str], means, lows, highs, styles: list[FamilyStyle], hollow: list[bool],
                 gids: list[str], rules: bool = False) -> None:
    """Horizontal mean-and-CI rows, the first label at the top; with ``rules``, a thin rule between families."""
    for y, (mean, lo, hi, style, open_, gid) in enumerate(zip(means, lows, highs, styles, hollow, gids,
                                                              strict=True)):
        err = np.clip(np.nan_to_num([[mean - lo], [hi - mean]], nan=0.0), 0, None)
        bars = ax.errorbar([mean], [y], xerr=err, fmt=style.marker, color=style.color, mfc="white" if open_ else
                           style.color, ms=5, elinewidth=1.0)
        bars.lines[0].set_gid(gid)  # on the marker only: a gid given to errorbar lands on every part
        if rules and y and styles[y - 1].label != style.label:
            ax.axhline(y - 0.5, color=GREY, lw=0.4, alpha=0.6)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)


@_styled
def metric_figure(data: RunData, metric: str) -> Figure | None:
    """Mean ``metric`` with its 95 % CI per codec variant (dot and whisker), anchors (grey squares) first, then
    codecs by family and bitrate (KLT variants after their base), the reference (black diamond) last; hollow
    markers and "(random weights)" for random weights. None without rows.

    Raises:
        ValueError: ``metric`` is not in the run's summary.
    """
    rows = _metric_rows(data, metric)
    if rows.empty:
        return None
    order = _variant_order(rows)
    by_spec = rows.drop_duplicates("codec_spec").set_index("codec_spec").loc[order]
    random = [s in data.random_specs for s in order]
    labels = [anchor_label(s) if s == REFERENCE_SPEC else short_label(s) for s in order]
    labels = _wrap([lab + (RANDOM_FLAG if r and RANDOM_FLAG.strip() not in lab else "") for lab, r in zip(
        labels, random, strict=True)])
    styles = [family_style(REFERENCE_SPEC if s == REFERENCE_SPEC else _family(s)) for s in order]
    title = f"{metric} (mean, 95 % CI)"
    height, width = _rows_size(labels, title)
    fig, ax = _figure(height + 0.2 * any(random), width=width)
    _dot_whisker(ax, labels, by_spec["mean"], by_spec["ci_low"], by_spec["ci_high"], styles, random,
                 [f"variant:{s}" for s in order], rules=True)
    unit, hib = _metric_info(rows, metric)
    ax.set_xlabel(metric_label(metric, unit, hib, width=30))
    ax.set_ylabel("codec variant")
    ax.set_title(title)
    _finish(fig, ax, any(random))
    return fig


# --- listening tests ---------------------------------------------------------------------------------------


def _condition_label(name: str) -> str:
    return _CONDITION_NAMES.get(name) or short_label(name)


def _condition_style(name: str) -> FamilyStyle:
    if name == HIDDEN_REFERENCE:
        return family_style(REFERENCE_SPEC)
    if name in (ANCHOR_LOW, ANCHOR_MID):
        return family_style(ANCHOR_FAMILY)
    return family_style(_family(name))


def _num(value) -> float:
    return np.nan if value is None else float(value)


@_styled
def mushra_figure(report: dict) -> Figure | None:
    """MUSHRA mean score with 95 % CI per condition, best at the top, from ``mushra_report``. None without
    conditions."""
    conditions = report.get("conditions") or {}
    if not conditions:
        return None
    order = sorted(conditions, key=lambda c: -np.nan_to_num(_num(conditions[c]["mean"]), nan=-np.inf))
    stats = [conditions[c] for c in order]
    labels = _wrap([_condition_label(c) for c in order])
    title = f"MUSHRA: mean and 95 % CI, {report.get('assessors', '?')} assessors"
    fig, ax = _figure(*_rows_size(labels, title))
    _dot_whisker(ax, labels, [_num(s["mean"]) for s in stats],
                 [_num(s["ci_low"]) for s in stats], [_num(s["ci_high"]) for s in stats],
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
        err = np.clip(np.nan_to_num([mean - [_num(v["ci_low"]) for v in s],
                                     np.array([_num(v["ci_high"]) for v in s]) - mean], nan=0.0), 0, None)
        style, hatch = looks[name]
        ax.bar(np.array(xs) + (k - (len(names) - 1) / 2) * width, mean, width * 0.92, yerr=err,
               color=style.color, alpha=0.85, hatch=hatch, edgecolor="white", linewidth=0.3,
               error_kw={"elinewidth": 0.7, "capsize": 1.5}, label=_condition_label(name))
    ax.set_xticks(range(len(items)), list(items))
    ax.set_ylim(0, 105)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("item")
    ax.set_ylabel("MUSHRA score (0–100), ↑ better")
    ax.set_title("MUSHRA per item: mean and 95 % CI over assessors")
    _finish(fig, ax, False, ncols=2)
    return fig


@_styled
def mushra_box_figure(ratings: list) -> Figure | None:
    """Distribution of MUSHRA scores per condition (box: quartiles, whiskers 1.5 IQR, white diamond: mean),
    best median at the top, from ``Rating`` records. None without ratings."""
    if not ratings:
        return None
    scores: dict[str, list[float]] = {}
    for r in ratings:
        scores.setdefault(r.condition, []).append(float(r.score))
    order = sorted(scores, key=lambda c: (-np.median(scores[c]), c))[::-1]  # boxplot fills bottom up
    labels = _wrap([_condition_label(c) for c in order])
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
    labels = [_wrap([_condition_label(p["a"])])[0] + "\nvs " + _wrap([_condition_label(p["b"])])[0] + "\n"
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
def correlation_figure(points: pd.DataFrame, metric: str, unit: str) -> Figure | None:
    """MUSHRA mean per (item, condition) against the metric's value, one colour and marker per condition,
    Pearson r and Spearman ρ in the title. ``points`` has ``listening_mean``, ``metric_value``, ``condition``
    and ``item``. None without points."""
    from evalkit.analysis.correlation import pearson, spearman

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
                   marker=markers[names.index(name) % len(markers)], label=_condition_label(name),
                   gid=f"condition:{name}")
    from evalkit.metrics import ALL_INFO

    hib = ALL_INFO[metric].higher_is_better if metric in ALL_INFO else None
    r, rho = pearson(points["metric_value"], points["listening_mean"]), spearman(points["metric_value"],
                                                                                 points["listening_mean"])
    stats = f"n = {r.n}: {r.reason}" if r.reason else \
        f"Pearson r = {r.value:.2f}, Spearman ρ = {rho.value:.2f}, n = {r.n}"
    ax.set_xlabel(metric_label(metric, unit, hib, width=34))
    ax.set_ylabel("MUSHRA mean (0–100), ↑ better")
    ax.set_title(f"MUSHRA against {metric}\n{stats}", fontsize=8)
    _finish(fig, ax, False)
    return fig


# --- output ----------------------------------------------------------------------------------------------


_METADATA = {"svg": {"Creator": None, "Date": None, "Type": None, "Format": None},  # no URL, no timestamp
             "pdf": {"Creator": None, "Producer": None, "CreationDate": None}, "png": {"Software": None}}


def _save(fig: Figure, target, fmt: str, text_as_paths: bool = True) -> None:
    rc = {**STYLE, "svg.fonttype": "path" if text_as_paths else "none"}
    with matplotlib.rc_context(rc):
        fig.savefig(target, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])


def figure_svg(fig: Figure, text_as_paths: bool = True) -> str:
    """The figure as inline SVG text (``<svg ...>...</svg>``, no XML declaration or DOCTYPE), with no external
    reference: text is drawn as glyph paths (the default: looks the same without DejaVu installed) or, with
    ``text_as_paths=False``, kept as ``<text>`` in DejaVu Sans (searchable, smaller)."""
    buf = io.BytesIO()
    _save(fig, buf, "svg", text_as_paths)
    text = buf.getvalue().decode("utf-8")
    return text[text.index("<svg"):]


def figure_png_data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (200 dpi)."""
    buf = io.BytesIO()
    _save(fig, buf, "png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` in the format its extension names: ``.png`` (200 dpi), ``.svg`` (text as paths) or
    ``.pdf`` (fonts embedded). Returns the path.

    Raises:
        ValueError: another extension (the message names the path and the valid ones).
        OSError: the file cannot be written.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in FIGURE_FORMATS:
        raise ValueError(f"{path}: unsupported figure format {ext or '(no extension)'}; "
                         f"expected {', '.join(FIGURE_FORMATS)}")
    if ext == ".svg":
        path.write_text('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + figure_svg(fig),
                        encoding="utf-8")
    else:
        _save(fig, path, ext[1:])
    return path
