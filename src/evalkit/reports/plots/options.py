"""What ``evalkit plot`` lets a paper change in a figure: which variants it shows (``--variants``), no axes title
(``--no-title``), its size in inches (``--size W,H``) and where the legend goes (``--legend outside|none``).

:func:`select_variants` narrows a run's tables to some variants before a figure is drawn; :func:`apply_options`
restyles a drawn figure. Both are pure: new objects out, the inputs untouched.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from evalkit.errors import UserError
from evalkit.reports.plots.style import HEIGHT_IN, STYLE, _legend_height
from evalkit.reports.rundata import REFERENCE_SPEC, RunData

_TABLES = ("results", "summary", "rate_quality", "codebook_usage", "codebook_by_depth", "klt_accounting",
           "klt_spectra", "units")


class FigureOptionError(UserError, ValueError):
    """A figure option that cannot be applied; the message names the option."""


class LegendPlacement(enum.Enum):
    OUTSIDE = "outside"  # right of the axes, outside the plotting area
    NONE = "none"


@dataclasses.dataclass(frozen=True)
class FigureOptions:
    """``size_in``: (width, height) in inches, None to keep the figure's own; ``legend``: None keeps the legend
    under the axes; ``title``: False removes the axes titles (the random-weights headline stays)."""

    title: bool = True
    size_in: tuple[float, float] | None = None
    legend: LegendPlacement | None = None


def parse_size(text: str) -> tuple[float, float]:
    """``"3.5,2.4"`` as (width, height) in inches.

    >>> parse_size("3.5,2.4"), parse_size(" 7 , 3 ")
    ((3.5, 2.4), (7.0, 3.0))

    Raises:
        FigureOptionError: not two positive numbers separated by a comma.
    """
    parts = text.split(",")
    try:
        width, height = (float(p) for p in parts)
    except ValueError:
        raise FigureOptionError(f"--size {text}: expected W,H in inches, e.g. 3.5,2.6") from None
    if not (0 < width <= 50 and 0 < height <= 50):
        raise FigureOptionError(f"--size {text}: expected inches above 0 and at most 50, got {width:g},{height:g}")
    return width, height


def select_variants(run: RunData, wanted: Iterable[str]) -> RunData:
    """``run`` with only the variants named in ``wanted``: each a codec spec as the run stored it, the spec as
    written in the config (``opus?bitrate_kbps=12``), or its short label (``Opus 12 kbps``).

    Raises:
        FigureOptionError: a name that matches no variant of the run (the message lists the run's labels).
    """
    from evalkit.runner.reader import canonical

    specs = list(dict.fromkeys(run.summary["codec_spec"])) if not run.summary.empty else []
    labels = run.labels(specs)
    by_name: dict[str, str] = {}
    for spec in specs:
        by_name.setdefault(spec, spec)
        by_name.setdefault(labels.get(spec, spec), spec)
    chosen, unknown = [], []
    for name in wanted:
        spec = by_name.get(name)
        if spec is None and name != REFERENCE_SPEC:
            spec = by_name.get(canonical(name))
        (chosen if spec is not None else unknown).append(spec if spec is not None else name)
    if unknown:
        raise FigureOptionError(f"--variants: {', '.join(unknown)} not in this run; its variants: "
                                f"{'; '.join(labels.get(s, s) for s in specs) or 'none'}")
    keep = set(chosen)

    def only(table: pd.DataFrame) -> pd.DataFrame:
        return table[table["codec_spec"].isin(keep)] if "codec_spec" in table else table

    narrowed = dataclasses.replace(run, **{name: only(getattr(run, name)) for name in _TABLES})
    narrowed.__dict__["reader"] = run.reader  # its records are loaded already
    return narrowed


def _legend_entries(fig: Figure) -> tuple[list, list[str]]:
    handles, labels = [], []
    for legend in fig.legends:
        handles += list(legend.legend_handles)
        labels += [t.get_text() for t in legend.get_texts()]
    return handles, labels


def _legend_width_in(labels: list[str]) -> float:
    """Inches a one-column legend of ``labels`` needs at 8 pt (handle, gap, text)."""
    widest = max((len(line) for label in labels for line in label.split("\n")), default=0)
    return 0.45 + 0.062 * widest


def apply_options(fig: Figure, options: FigureOptions) -> Figure:
    """``fig`` with ``options`` applied (the same object, changed in place; returned for chaining)."""
    with matplotlib.rc_context(STYLE):
        if not options.title:
            for ax in fig.axes:
                ax.set_title("")
        if options.legend is not None:
            handles, labels = _legend_entries(fig)
            for legend in list(fig.legends):
                legend.remove()
            width, height = fig.get_size_inches()
            if handles and options.size_in is None:  # the room the legend under the axes had goes
                height = max(HEIGHT_IN, height - _legend_height(len(labels)))
            if options.legend is LegendPlacement.OUTSIDE and handles:
                fig.legend(handles, labels, loc="outside right center", ncols=1)
                width += _legend_width_in(labels)  # the axes keep their width
            fig.set_size_inches(width, height)
        if options.size_in is not None:
            fig.set_size_inches(*options.size_in)
    return fig
