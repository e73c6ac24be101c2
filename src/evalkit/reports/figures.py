"""The report's figures as inline SVG records: single figures with their caption, and small-multiples grids
(one panel per metric, laid out by CSS, one shared HTML legend)."""

from __future__ import annotations

from collections.abc import Callable

from evalkit.reports.rundata import RunData


def figure(make: Callable, *args, alt: str) -> dict | None:
    """One figure as ``{"svg", "alt"}`` (the alt text is also its caption); None when there is nothing to plot."""
    from evalkit.reports import plots

    fig = make(*args)
    return None if fig is None else {"svg": plots.figure_svg(fig), "alt": alt}


def grid(run: RunData, metrics: list[str], make: Callable, *, caption: str, alt: Callable[[str], str],
         shared_legend: bool) -> dict | None:
    """Small multiples: ``make(run, metric, legend=False)`` per metric as panels, then (``shared_legend``)
    the union of the panels' legend entries as ``{"svg", "label"}`` swatches; None when no panel has data."""
    from evalkit.reports import plots

    figures, panels = [], []
    for metric in metrics:
        fig = make(run, metric, legend=False)
        if fig is None:
            continue
        figures.append(fig)
        panels.append({"svg": plots.figure_svg(fig), "alt": alt(metric), "metric": metric})
    if not panels:
        return None
    legend = []
    if shared_legend:
        legend = [{"label": label.replace("$\\tilde{d}$", "d̃"),
                   "svg": plots.figure_svg(plots.legend_swatch(handle))}
                  for label, handle in plots.legend_entries(figures)]
    return {"panels": panels, "legend": legend, "caption": caption}
