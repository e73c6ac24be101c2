"""How every figure looks: the Okabe–Ito palette, one style per codec family, readable labels of codec specs
and metrics, and the helpers that make a styled figure, its legend and its dot-and-whisker rows.

Figures are ``Figure`` objects built without pyplot, inside a temporary rc context (:data:`STYLE`): matplotlib's
bundled DejaVu fonts, 8 pt text, 3.5 in wide (one journal column). Colours are the colour-blind-safe Okabe–Ito
palette and every codec family keeps one colour and marker (:func:`family_style`) in every figure. Variants with
random weights have hollow markers, "(random weights)" in their label and :data:`RANDOM_NOTE` as the
figure's headline.
"""

from __future__ import annotations

import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from evalkit.analysis.rate_quality import rate_family
from evalkit.codecs.spec import SpecError, format_value, split_spec
from evalkit.reports.rundata import ANCHOR_FAMILY, REFERENCE_SPEC

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
GREY = "#7A7A7A"  # anchors: neutral, no family's colour
COLUMN_IN = 3.5  # single journal column
HEIGHT_IN = 2.6
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
        if family == "decoded" and raw.get("label"):  # a decoded folder is shown by its configured label
            return raw["label"]
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
