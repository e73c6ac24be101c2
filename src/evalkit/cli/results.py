"""Reading a finished run: ``evalkit summary``, ``evalkit compare`` and ``evalkit report``."""

from __future__ import annotations

import argparse

from evalkit.cli._base import print_json


def add_parsers(sub) -> None:
    """Register ``summary``, ``compare`` and ``report`` on an argparse subparsers object."""
    summary = sub.add_parser("summary", help="the per-variant table of a finished run, as `evalkit run` ends")
    summary.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `evalkit run`")
    summary.add_argument("--long", action="store_true",
                         help="one line per variant x metric with 95%% CI, n, failures and the full spec "
                              "(summary.txt), then the real-time factors")
    summary.add_argument("--metrics", nargs="+", metavar="NAME",
                         help="metric columns in this order (default: the headline metrics, then the others as "
                              "far as the terminal is wide)")
    summary.add_argument("--json", action="store_true",
                         help='one JSON object {"metrics": [...], "variants": [{"codec_spec", "label", "kbps", '
                              '"metrics": {name: {"mean", "ci_low", "ci_high", "n", "failures", "best"}}}]}, every '
                              "metric unless --metrics, NaN as null")
    summary.add_argument("--format", choices=["latex", "markdown", "csv"], dest="table_format",
                         help="a table for a paper: means with 95%% CIs, the best codec per column in bold, units "
                              "in the header, n where it differs between cells (default columns: the headline "
                              "metrics; LaTeX needs booktabs)")
    summary.set_defaults(func=summary_command)

    cmp = sub.add_parser("compare", help="Bjontegaard BD-rate / BD-quality of every family against an anchor")
    cmp.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `evalkit run` (holds rate_quality.csv)")
    cmp.add_argument("--metric", required=True, metavar="NAME", help="metric of the rate-quality curves")
    cmp.add_argument("--anchor", metavar="FAMILY", help="anchor family (default: opus)")
    cmp.add_argument("--paired", action="store_true",
                     help="instead of BD deltas: every pair of variants on their shared items (paired bootstrap "
                          "95%% CI of the mean difference, Wilcoxon signed-rank, Holm over the pairs), with each "
                          "variant's wins, ties and losses")
    cmp.add_argument("--json", action="store_true",
                     help='one JSON object {"metric", "anchor", "families": {name: {"bd_rate_percent", '
                          '"bd_quality", "points", "reason", "bd_rate_flags", "bd_quality_flags", ...}}}; with '
                          '--paired {"metric", "alpha", "pairs": [{"a", "b", "n", "mean_difference", "ci_low", '
                          '"ci_high", "p", "p_holm", "outcome"}], "records", "labels"}; NaN as null')
    cmp.set_defaults(func=compare_command)

    report = sub.add_parser("report", help="one self-contained HTML report of a run (and a listening test)")
    report.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `evalkit run`")
    report.add_argument("--listening", metavar="TEST_DIR", help="a listening test folder with ratings")
    report.add_argument("-o", "--output", metavar="FILE", help="report file (default: RUN_DIR/report.html)")
    report.add_argument("--examples", type=int, default=3, help="items with inline audio examples (default 3; 0: none)")
    report.add_argument("--excerpt", type=float, default=5.0, help="seconds of each audio example (default 5)")
    report.set_defaults(func=report_command)


def summary_command(args: argparse.Namespace) -> int:
    from evalkit.messages import shown_lines
    from evalkit.reports.console import board_json, long_table, run_scoreboard, terminal_width, wide_table
    from evalkit.reports.rundata import load_run

    run = load_run(args.run_dir)
    if args.table_format is not None:
        from evalkit.reports.paper_table import paper_table
        from evalkit.reports.scoreboard import scoreboard

        board = run_scoreboard(run, args.metrics) if args.metrics else scoreboard(run)
        print(paper_table(board, args.table_format), end="")
        return 0
    board = run_scoreboard(run, args.metrics)
    if args.json:
        print_json(board_json(board))
    elif args.long:
        print(shown_lines(long_table(run, args.metrics)))
    else:
        print(shown_lines(wide_table(board, terminal_width())))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    import json

    if args.paired:
        from evalkit.reports.comparisons import paired_comparison
        from evalkit.runner.compare_errors import CompareError
        from evalkit.runner.paired import format_paired

        if args.anchor is not None:
            raise CompareError("--anchor: --paired compares every pair of variants, it takes no anchor")
        result, labels = paired_comparison(args.run_dir, args.metric)
        if args.json:
            print(json.dumps({**result.to_json(), "labels": {s: labels[s] for s in result.variants}}))
        else:
            print(format_paired(result, labels))
        return 0
    from evalkit.runner.compare import compare, format_comparison
    from evalkit.runner.rate_quality import load_rate_quality

    result = compare(load_rate_quality(args.run_dir), args.metric, args.anchor)
    print(json.dumps(result.to_json()) if args.json else format_comparison(result))
    return 0


def report_command(args: argparse.Namespace) -> int:
    from evalkit.reports.html import write_report
    from evalkit.reports.rundata import ReportError

    if args.examples < 0:
        raise ReportError(f"--examples {args.examples}: expected 0 or more items")
    if not args.excerpt > 0:
        raise ReportError(f"--excerpt {args.excerpt}: expected a positive number of seconds")
    path = write_report(args.run_dir, args.listening, args.output, examples=args.examples, excerpt_s=args.excerpt)
    print(f"report ({path.stat().st_size / 1e6:.1f} MB): {path}")
    return 0
