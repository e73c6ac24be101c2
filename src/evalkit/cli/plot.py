"""``evalkit plot perplexity|rate-quality|metric RUN_DIR -o FILE``: one figure of a run as PNG, SVG or PDF.

Argument checks and printing only; the figures are in :mod:`evalkit.reports.plots`, imported by the commands (it
pulls in matplotlib and pandas, which ``evalkit --help`` must not wait for).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parsers(sub) -> None:
    """Register ``plot`` and its subcommands on an argparse subparsers object."""
    plot = sub.add_parser("plot", help="paper-quality figures of a run (PNG, SVG or PDF)").add_subparsers(
        dest="action", required=True)
    specs = [("perplexity", "perplexity of every codebook against its index, every variant with codes", False),
             ("rate-quality", "a metric (mean, 95 % CI) against measured bitrate, one line per codec family, "
                              "low-pass anchors as horizontal lines", True),
             ("metric", "a metric (mean, 95 % CI) per codec variant", True)]
    for name, help_text, needs_metric in specs:
        cmd = plot.add_parser(name, help=help_text)
        cmd.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="output folder of `evalkit run`")
        if needs_metric:
            cmd.add_argument("--metric", required=True, metavar="NAME", help="a metric of the run's summary")
        cmd.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                         help="figure file; the format follows the extension: .png (200 dpi), .svg or .pdf")
        cmd.add_argument("--variants", nargs="+", metavar="VARIANT",
                         help="only these variants: codec specs (as in the config or the run) or short labels "
                              "('Opus 12 kbps'); anchors and the reference too only when named")
        cmd.add_argument("--no-title", action="store_true", help="no title above the axes")
        cmd.add_argument("--size", metavar="W,H", help="figure width and height in inches (default 3.5 wide, "
                                                       "one journal column)")
        cmd.add_argument("--legend", choices=["outside", "none"],
                         help="outside: right of the axes; none: no legend (default: under the axes)")
        cmd.set_defaults(func=plot_command, figure=name)


def plot_command(args: argparse.Namespace) -> int:
    """Load the run, check the metric, draw ``args.figure`` and write it to ``args.output``."""
    from evalkit.reports import plots
    from evalkit.reports.rundata import ReportError, load_run

    if args.output.suffix.lower() not in plots.FIGURE_FORMATS:
        raise ReportError(f"-o {args.output}: unsupported figure format {args.output.suffix or '(no extension)'}; "
                      f"expected {', '.join(plots.FIGURE_FORMATS)}")

    from evalkit.reports.plots import options as figure_options


    options = figure_options.FigureOptions(
        title=not args.no_title, size_in=figure_options.parse_size(args.size) if args.size else None,
        legend=figure_options.LegendPlacement(args.legend) if args.legend else None)
    run = load_run(args.run_dir)
    if args.variants:
        run = figure_options.select_variants(run, args.variants)
    metric = getattr(args, "metric", None)
    if metric is not None and metric not in run.metrics:
        raise ReportError(f"--metric {metric}: not in the summary of {args.run_dir}; its metrics: "
                      f"{', '.join(run.metrics) or 'none'}")
    if args.figure == "perplexity":
        fig = plots.perplexity_figure(run)
        nothing = f"{args.run_dir}: no codebook usage (no variant of the run emits codes); nothing to plot"
    elif args.figure == "rate-quality":
        fig = plots.rate_quality_figure(run, metric)
        nothing = f"{args.run_dir}: no variant with a bitrate has {metric} scores; nothing to plot"
    else:
        fig = plots.metric_figure(run, metric)
        nothing = f"{args.run_dir}: no {metric} rows; nothing to plot"
    if fig is None:
        raise ReportError(nothing)
    figure_options.apply_options(fig, options)
    try:
        path = plots.save_figure(fig, args.output)
    except OSError as exc:
        raise ReportError(f"-o {args.output}: cannot write ({exc.strerror or exc})") from None
    print(path)
    return 0
