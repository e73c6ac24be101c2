"""Paper-quality figures of a run and of a listening test: pure functions, data in, a ``matplotlib`` ``Figure``
out, or ``None`` when there is nothing to plot; then writers (PNG at 200 dpi, SVG, PDF, inline SVG, PNG data URI).

Modules: :mod:`.style` (palette, family styles, labels, the shared figure helpers), :mod:`.run_figures` (a run's
metrics, codebook usage and KLT), :mod:`.listening_figures` (MUSHRA, AB/ABX, listening against a metric),
:mod:`.output` (the writers).
"""

from evalkit.reports.plots.listening_figures import (
    ab_figure,
    correlation_figure,
    mushra_box_figure,
    mushra_figure,
    mushra_items_figure,
)
from evalkit.reports.plots.output import FIGURE_FORMATS, PNG_DPI, figure_png_data_uri, figure_svg, save_figure
from evalkit.reports.plots.run_figures import (
    codebook_usage_figure,
    klt_metric_figure,
    klt_spectrum_figure,
    metric_figure,
    perplexity_figure,
    rate_quality_figure,
)
from evalkit.reports.plots.style import (
    COLUMN_IN,
    GREY,
    HEIGHT_IN,
    OKABE_ITO,
    RANDOM_FLAG,
    RANDOM_NOTE,
    STYLE,
    FamilyStyle,
    anchor_label,
    family_style,
    legend_entries,
    legend_swatch,
    metric_label,
    metric_name,
    short_label,
)

__all__ = ["COLUMN_IN", "FIGURE_FORMATS", "GREY", "HEIGHT_IN", "OKABE_ITO", "PNG_DPI", "RANDOM_FLAG", "RANDOM_NOTE",
           "STYLE", "FamilyStyle", "ab_figure", "anchor_label", "codebook_usage_figure", "correlation_figure",
           "family_style", "figure_png_data_uri", "figure_svg", "klt_metric_figure", "klt_spectrum_figure",
           "legend_entries", "legend_swatch", "metric_figure", "metric_label", "metric_name", "mushra_box_figure",
           "mushra_figure", "mushra_items_figure", "perplexity_figure", "rate_quality_figure", "save_figure",
           "short_label"]
