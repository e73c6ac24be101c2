"""``evalkit metrics list`` and ``evalkit score REFERENCE DEGRADED``."""

from __future__ import annotations

import argparse
import sys

from evalkit.cli._base import print_json


def add_parsers(sub) -> None:
    """Register the metric commands on an argparse subparsers object."""
    metrics = sub.add_parser("metrics", help="objective metrics").add_subparsers(dest="action", required=True)
    metrics_list = metrics.add_parser("list", help="the metric registry with metadata")
    metrics_list.add_argument("--json", action="store_true", help="one JSON list of metric metadata")
    metrics_list.add_argument("--plugin", action="append", metavar="FILE.py",
                              help="also load this metric plugin file (repeatable; as `plugins:` in a run config)")
    metrics_list.set_defaults(func=metrics_list_command)

    score = sub.add_parser("score", help="score one degraded file against its reference")
    score.add_argument("reference", help="reference audio file (any rate)")
    score.add_argument("degraded", help="degraded audio file (any rate)")
    score.add_argument("--metric", action="append", metavar="NAME",
                       help="metric to compute (repeatable; default: all that apply to the rates)")
    score.add_argument("--json", action="store_true", help="print one JSON object {metric: value}, NaN as null")
    score.add_argument("--category", help="content category as in a manifest; 'speech' adds the speech metrics")
    score.add_argument("--text", help="transcript of the reference (for wer and cer)")
    score.add_argument("--max-delay-s", type=float, metavar="S",
                       help="delay search window in seconds, searched first; then up to 10 %% of the reference "
                            "(at most 1 s) when larger (default 0.05)")
    score.add_argument("--plugin", action="append", metavar="FILE.py",
                       help="also load this metric plugin file (repeatable); then name its metrics with --metric")
    score.set_defaults(func=score_command)


def metrics_list_command(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from evalkit.metrics import ALL_INFO, load_metric_plugins

    load_metric_plugins(args.plugin or ())
    if args.json:
        print_json([{**asdict(info), "library_version": info.library_version()} for info in ALL_INFO.values()])
        return 0
    for info in ALL_INFO.values():
        rate = " or ".join(f"{r} Hz" for r in info.rates) if info.sample_rate else "reference rate"
        if info.fallback_rates:
            rate += " (the highest the input reaches)"
        direction = "higher is better" if info.higher_is_better else "lower is better"
        print(f"{info.name}: {info.variant}")
        print(f"    shown as \"{info.header}\"; kind {info.kind}, unit {info.unit}, {direction}, {rate}, "
              f"min {info.min_duration_s:g} s, "
              f"channels {info.channels}")
        print(f"    {info.library} {info.library_version()}; v{info.version}; {info.paper}"
              + ("; aligns internally" if info.aligns_internally else ""))
        if info.applies_to:
            print(f"    `applicable` runs it on {info.applies_to} items"
                  + (" and items of no category" if info.uncategorised else ""))
        if source := getattr(info, "source", ""):  # a plugin metric
            print(f"    source: {source}")
    return 0


def score_command(args: argparse.Namespace) -> int:
    import json
    import math

    from evalkit import audio as audio_lib
    from evalkit.metrics import Reference, applicable_metrics, get_metrics, load_metric_plugins, score_pair
    from evalkit.metrics.score import preparation_notes

    max_delay_s = audio_lib.DEFAULT_MAX_DELAY_S if args.max_delay_s is None else args.max_delay_s
    if not max_delay_s >= 0:
        from evalkit.runner.config import ConfigError

        raise ConfigError("score", [f"--max-delay-s: expected a number >= 0, got {max_delay_s:g}"])
    load_metric_plugins(args.plugin or ())
    ref = audio_lib.load(args.reference)
    deg = audio_lib.load(args.degraded)
    metrics = get_metrics(args.metric) if args.metric else applicable_metrics(ref.sample_rate, deg.sample_rate,
                                                                               category=args.category)
    results = score_pair(Reference(ref.samples, ref.sample_rate, str(args.reference), text=args.text), deg.samples,
                         deg.sample_rate, metrics, max_delay_s=max_delay_s, source=str(args.degraded))
    for r in results:
        if r.reason:
            print(f"evalkit: {r.metric}: NaN ({r.reason})", file=sys.stderr)
    for line in preparation_notes(ref.samples.shape[1] / ref.sample_rate, deg.samples.shape[1] / deg.sample_rate,
                                  results):
        print(f"evalkit: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps({r.metric: (None if math.isnan(r.value) else r.value) for r in results}))
        return 0
    print(f"{'metric':<18} {'value':>10}  {'unit':<36} {'rate':>6} {'delay ms':>8}  notes")
    for r in results:
        p = r.preparation
        value = "NaN" if math.isnan(r.value) else f"{r.value:.4f}"
        rate = f"{p.rate}" if p else "-"
        delay = "-" if not p else "metric" if p.aligned_by == "metric" else f"{p.delay_ms:.2f}"
        notes = r.reason or (p.channels + (f", resampled ({p.resampler})" if p and p.resampler else "")
                             + (", aligned by the metric" if p and p.aligned_by == "metric" else ""))
        print(f"{r.metric:<18} {value:>10}  {r.unit:<36} {rate:>6} {delay:>8}  {notes}")
    return 0
