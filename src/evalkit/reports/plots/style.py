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

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from evalkit.reports.rundata import REFERENCE_SPEC
from evalkit.runner.reader import CurveKind, curve_marker_index, curve_parts, describe_spec

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
    "qincodec": ("QinCodec", "green", "D"), "qincodec-rvq": ("QinCodec RVQ", "purple", "v"),
    "qincodec-irvq": ("QinCodec iRVQ", "purple", "^"),
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


ANCHOR_STYLE = FamilyStyle("low-pass anchor", GREY, "s", ":")


def family_style(family: str) -> FamilyStyle:
    """Legend label, colour, marker and line style of a rate–quality family (see ``rate_family``).

    KLT families take their base's colour with a dashed line; unknown families get a stable palette colour.

    >>> family_style("opus").label, family_style("opus:application=voip").linestyle
    ('Opus', '--')
    """
    parts = curve_parts(family)
    if parts.kind is CurveKind.KLT:
        b = family_style(parts.base)
        marker = _KLT_MARKERS[curve_marker_index(parts.detail, len(_KLT_MARKERS))]
        return FamilyStyle(f"{b.label}, KLT $\\tilde{{d}}$ = {parts.detail.removeprefix('dim=')}", b.color, marker,
                           "--")
    if parts.kind is CurveKind.SETTINGS:  # a family with other settings: its colour, dashed
        b = family_style(parts.base)
        extra = ",".join(t for t in parts.detail.split(",") if t != "weights=random")  # said by RANDOM_FLAG already
        if not extra:
            return b
        marker = _KLT_MARKERS[curve_marker_index(extra, len(_KLT_MARKERS))]
        return FamilyStyle(f"{b.label} ({extra.replace(',', ', ')})", b.color, marker, "--")
    if parts.kind is CurveKind.ANCHOR:
        return ANCHOR_STYLE
    if parts.kind is CurveKind.REFERENCE:
        return FamilyStyle("reference", OKABE_ITO["black"], "D", "-.")
    if family in _FAMILY_STYLES:
        label, color, marker = _FAMILY_STYLES[family]
        return FamilyStyle(label, OKABE_ITO[color], marker)
    palette = [c for k, c in OKABE_ITO.items() if k != "yellow"]  # yellow is too light for lines on white
    return FamilyStyle(family, palette[zlib.crc32(family.encode()) % len(palette)], "o")


# Line styles and markers handed out, in order, to curves of one colour (one base family) in a figure
LINESTYLES = ("-", "--", "-.", ":", (0, (6, 2, 1, 2, 1, 2)), (0, (8, 3)), (0, (1, 1)), (0, (4, 1, 1, 1)))
_SPARE_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "h", "d", "p", "*", "<", ">")


def distinct_styles(styles: list[FamilyStyle]) -> list[FamilyStyle]:
    """``styles`` of the curves of one figure, in order, with no two curves of one colour sharing a line style
    or a marker: a repeated one is replaced by the first of :data:`LINESTYLES` (markers: the spares) its colour
    does not use yet. Two variants of a family with other settings (``beam=4``) thus never look alike.

    >>> a, b = distinct_styles([family_style("opus:application=voip"), family_style("opus:application=voip")])
    >>> a.linestyle, b.linestyle, a.marker != b.marker
    ('--', '-.', True)
    """
    used: dict[str, tuple[set, set]] = {}
    out = []
    for style in styles:
        lines, markers = used.setdefault(style.color, (set(), set()))
        # a variant with other settings never turns solid: solid is its base's look
        ls = style.linestyle if style.linestyle not in lines else next(
            (x for x in LINESTYLES if x not in lines and (x != "-" or style.linestyle == "-")), style.linestyle)
        marker = style.marker if style.marker not in markers else next(
            (m for m in _SPARE_MARKERS if m not in markers), style.marker)
        lines.add(ls)
        markers.add(marker)
        out.append(FamilyStyle(style.label, style.color, marker, ls))
    return out


def _family(spec: str) -> str:
    """The rate–quality curve of a spec from no run (a listening condition): its record's."""
    return describe_spec(spec).curve


def short_label(spec: str, per_channel: bool = False) -> str:
    """The shared short label of a codec spec or listening condition (its variant record's, see
    :func:`evalkit.codecs.labels.short_label`; ``per_channel``: the run coded it channel by channel, ``kbps/ch``).

    >>> short_label("opus?application=audio&bitrate_kbps=12"), short_label("anchor35")
    ('Opus 12 kbps', '3.5 kHz anchor')
    """
    return describe_spec(spec).label_for(per_channel)


def anchor_label(spec: str) -> str:
    """Label of a horizontal reference line: ``3.5 kHz anchor``, ``Reference (uncoded)``."""
    return "Reference (uncoded)" if spec == REFERENCE_SPEC else short_label(spec)


def metric_name(metric: str) -> str:
    """The metric's display name (``SI-SDR``), or its name when the registry has none."""
    from evalkit.metrics import ALL_INFO

    info = ALL_INFO.get(metric)
    return info.label if info is not None else metric


def metric_label(metric: str, unit: str, higher_is_better: bool | None, width: int = 44) -> str:
    """Axis label ``display name (unit), ↑ better`` wrapped at ``width`` characters.

    >>> metric_label("si_sdr", "dB", True)
    'SI-SDR (dB), ↑ better'
    """
    arrow = "" if higher_is_better is None else ", ↑ better" if higher_is_better else ", ↓ better"
    name = metric_name(metric)
    text = f"{name} ({unit}){arrow}" if unit else f"{name}{arrow}"
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


def legend_entries(figures: list[Figure]) -> list[tuple[str, object]]:
    """(label, artist) of every labelled artist of the figures' axes, each label once, in first-seen order:
    the shared legend of a small-multiples grid."""
    seen: dict[str, object] = {}
    for fig in figures:
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(label, handle)
    return list(seen.items())


@_styled
def legend_swatch(handle) -> Figure:
    """A small figure drawing one legend handle's line and marker (an HTML legend entry's symbol)."""
    fig = Figure(figsize=(0.42, 0.16))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.plot([0.05, 0.95], [0.5, 0.5], color=handle.get_color(), ls=handle.get_linestyle(),
            lw=handle.get_linewidth())
    marker = handle.get_marker()
    if marker not in (None, "None", "", " "):
        ax.plot([0.5], [0.5], marker=marker, color=handle.get_color(), mfc=handle.get_markerfacecolor(), ms=4.5,
                ls="none")
    return fig
