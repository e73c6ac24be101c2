"""``evalkit`` command line: parse, call the library, print. Bad input ends with one line and exit code 2."""

# Imports of evalkit's modules (and through them numpy, torch, scipy, pandas) happen inside the commands that
# need them, so that `evalkit --help` and the list commands start at once (tests/test_cli_startup.py).
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

# Exceptions that mean bad user input, as (module, class): looked up only once one is raised, so that this
# module imports none of them.
USER_ERRORS = (("evalkit.audio", "AudioError"), ("evalkit.codecs.spec", "SpecError"),
               ("evalkit.codecs.weights", "WeightsNotFound"), ("evalkit.metrics.registry", "UnknownMetric"),
               ("evalkit.runner.config", "ConfigError"), ("evalkit.listening.errors", "ListenError"),
               ("evalkit.runner.compare_errors", "CompareError"), ("evalkit.reports.rundata", "ReportError"),
               ("evalkit.codecs.plugins", "PluginError"), ("evalkit.api", "RunNotFound"),
               ("evalkit.runner.store", "StoreError"), ("evalkit.codecs.safe_load", "WeightsFileError"),
               ("evalkit.runner.executors", "DaskSchedulerError"), ("evalkit.plugin_files", "PluginError"))


def _user_errors() -> tuple[type[BaseException], ...]:
    """The user-error classes of the modules imported so far (one not imported cannot have been raised)."""
    found: list[type[BaseException]] = [FileNotFoundError]
    for module, name in USER_ERRORS:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def _print_json(value: object) -> None:
    import json

    print(json.dumps(value, indent=1, default=str))


def _codecs_list(args: argparse.Namespace) -> int:
    from evalkit.codecs.catalog import catalog_records, render_catalog
    from evalkit.codecs.plugins import load_plugin_files

    load_plugin_files(args.plugin or ())
    if args.json:
        _print_json(catalog_records())
        return 0
    print(render_catalog(), end="")
    return 0


def _weights_status(args: argparse.Namespace) -> int:
    from evalkit.codecs.weights import WEIGHTS_ENV, status

    rows = status()
    if args.json:
        _print_json([{"name": r.name, "filename": r.filename, "path": str(r.path) if r.path else None,
                      "checksum": r.checksum} for r in rows])
        return 0
    for row in rows:
        where = f"{row.path} ({row.checksum} checksum)" if row.path else "MISSING"
        print(f"{row.name:<18} {row.filename:<34} {where}")
    missing = sum(r.path is None for r in rows)
    if missing:
        print(f"\n{missing} of {len(rows)} missing: `evalkit weights fetch NAME` downloads one (needs internet), "
              f"or copy the file into ${WEIGHTS_ENV} or the library cache shown by the error.")
    return 0


def _weights_fetch(args: argparse.Namespace) -> int:
    from evalkit.codecs.spec import SpecError
    from evalkit.codecs.weights import get_entry

    try:
        entry = get_entry(args.name)
    except KeyError as exc:
        raise SpecError(exc.args[0]) from None
    path = entry.resolve(allow_download=True)
    print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from evalkit.demo import format_rows, run_demo

    rows = list(run_demo(args.data, max_seconds=args.seconds, device=args.device))
    print(format_rows(rows))
    random_rows = [r for r in rows if r.weights.startswith("random")]
    if random_rows:
        print("\nNOTE: rows marked 'random' use the official architecture with random weights (no pretrained "
              "weights on this machine): their audio is noise-like; lengths and bitrates are real.")
    return 0


def _metrics_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from evalkit.metrics import ALL_INFO, load_metric_plugins

    load_metric_plugins(args.plugin or ())
    if args.json:
        _print_json([{**asdict(info), "library_version": info.library_version()} for info in ALL_INFO.values()])
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


def _score(args: argparse.Namespace) -> int:
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


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evalkit.logs import log_to_file
    from evalkit.runner import ConfigError, load_config, run_evaluation
    from evalkit.runner.output import check_output
    from evalkit.runner.run import RunInterrupted, output_lock

    config, specs = load_config(args.config)
    updates = {}
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigError(args.config, [f"--workers: expected an integer >= 1, got {args.workers}"])
        updates["workers"] = args.workers
    if args.connect_timeout <= 0:
        raise ConfigError(args.config, [f"--connect-timeout: expected seconds > 0, got {args.connect_timeout:g}"])
    config = config.model_copy(update=updates)
    output = Path(config.output)
    check_output(config)  # before the lock file and run.log are written into it
    with output_lock(output):  # creates the folder; exit 2 when unwritable or used by another run
        log_to_file(output / "run.log")  # third-party chatter and warnings included
        try:
            report = run_evaluation(config, specs, executor=args.executor, scheduler=args.scheduler,
                                    fresh=args.fresh, connect_timeout_s=args.connect_timeout)
        except RunInterrupted as exc:
            print(exc, file=sys.stderr)
            return EXIT_INTERRUPTED
    from evalkit.messages import shown, shown_lines
    from evalkit.reports.console import run_scoreboard, shown_path, terminal_width, wide_table
    from evalkit.reports.rundata import load_run

    print(shown_lines(wide_table(run_scoreboard(load_run(output)), terminal_width())))
    print(f"\nunits: {report.units_total} planned, {report.units_run} run, {report.units_rescored} rescored, "
          f"{report.units_failed} failed, {report.units_total - report.units_run - report.units_rescored} "
          f"already done or skipped; {report.wall_s:.1f} s")
    for spec, reason in report.variants_skipped:
        print(shown(f"skipped {spec}: {reason}"))
    folder = shown_path(output)
    print(shown(f"store: {shown_path(report.store)}"))
    print(shown(f"exports: {', '.join(shown_path(report.exports[k]) for k in ('results_parquet', 'summary_csv'))}, "
                f"{shown_path(report.exports['codebook_usage_csv'])}; long table: "
                f"{shown_path(output / 'summary.txt')}; log: {shown_path(output / 'run.log')}"))
    print(shown(f"next: evalkit summary {folder} --long · evalkit report {folder}"))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from evalkit.messages import shown_lines
    from evalkit.reports.console import board_json, long_table, run_scoreboard, terminal_width, wide_table
    from evalkit.reports.rundata import load_run

    run = load_run(args.run_dir)
    board = run_scoreboard(run, args.metrics)
    if args.json:
        _print_json(board_json(board))
    elif args.long:
        print(shown_lines(long_table(run, args.metrics)))
    else:
        print(shown_lines(wide_table(board, terminal_width())))
    return 0


def _compare_paired(args: argparse.Namespace) -> int:
    import json

    from evalkit.reports.rundata import load_run
    from evalkit.reports.scoreboard import metric_column, variant_labels, variant_order
    from evalkit.runner.compare_errors import CompareError
    from evalkit.runner.paired import compare_variants, format_paired

    if args.anchor is not None:
        raise CompareError("--anchor: --paired compares every pair of variants, it takes no anchor")
    run = load_run(args.run_dir)
    if args.metric not in run.metrics:
        raise CompareError(f"metric {args.metric!r} is not in this run; its metrics: "
                           f"{', '.join(run.metrics) or 'none'}")
    column = metric_column(run, args.metric)
    if column.higher_is_better is None:
        raise CompareError(f"metric {args.metric!r} has no direction (higher or lower is better): no verdicts")
    seed = int((run.provenance.get("config") or {}).get("seed") or 0)
    result = compare_variants(run.results, args.metric, column.higher_is_better, variants=variant_order(run),
                              seed=seed)
    labels = variant_labels(run)
    if args.json:
        print(json.dumps({**result.to_json(), "labels": {s: labels[s] for s in result.variants}}))
    else:
        print(format_paired(result, labels))
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from evalkit.runner.compare import compare, format_comparison
    from evalkit.runner.rate_quality import load_rate_quality

    if args.paired:
        return _compare_paired(args)
    result = compare(load_rate_quality(args.run_dir), args.metric, args.anchor)
    print(json.dumps(result.to_json()) if args.json else format_comparison(result))
    return 0


def _klt_analyze(args: argparse.Namespace) -> int:
    import json

    from evalkit.codecs.klt_report import analyze, format_analysis

    result = analyze(args.spec, dim=args.dim, n_cov=args.n_cov)
    print(json.dumps(result) if args.json else format_analysis(result))
    return 0


def _read_text_option(option: str, path: str | None) -> str:
    from pathlib import Path

    from evalkit.listening.errors import ListenError

    if path is None:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ListenError(f"{option} {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ListenError(f"{option} {path}: not UTF-8 text (Markdown expected)") from None


def _read_trial_instructions(path: str | None) -> tuple[tuple[str, str], ...]:
    """``--trial-instructions``: Markdown for every trial, or a JSON object {item or "*": Markdown}."""
    import json

    from evalkit.listening.errors import ListenError

    text = _read_text_option("--trial-instructions", path)
    if path is None or not path.endswith(".json"):
        return (("*", text),) if text.strip() else ()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListenError(f"--trial-instructions {path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ListenError(f'--trial-instructions {path}: expected an object {{"item or *": "Markdown"}}')
    return tuple((str(k), v) for k, v in raw.items())


def _listen_prepare(args: argparse.Namespace) -> int:
    from evalkit.labels import parse_label_options
    from evalkit.listening.design import PrepareOptions, prepare_test
    from evalkit.listening.errors import ListenError
    from evalkit.listening.model import Design
    from evalkit.listening.questionnaire import load_questionnaire

    try:
        labels = tuple(parse_label_options(args.label or ()).items())
    except ValueError as exc:
        raise ListenError(str(exc)) from None
    options = PrepareOptions(Design(args.design), items=args.items, conditions=tuple(args.conditions or ()),
                             listeners=args.listeners, seed=args.seed, excerpt_s=args.excerpt_seconds,
                             target_lufs=args.loudness_lufs, repeats=args.repeats, labels=labels,
                             instructions=_read_text_option("--instructions", args.instructions),
                             consent=_read_text_option("--consent", args.consent),
                             trial_instructions=_read_trial_instructions(args.trial_instructions),
                             require_training=args.require_training, headphone_check=args.headphone_check,
                             questionnaire=load_questionnaire(args.questionnaire) if args.questionnaire else ())
    definition = prepare_test(args.run, args.out, options)
    n_trials = len(definition.slots[0])
    extra = " (+ hidden reference; anchors included)" if definition.design == "mushra" else ""
    print(f"{args.out}: {definition.design} test, {len(definition.items)} items, "
          f"{len(definition.conditions)} conditions{extra}, {len(definition.stimuli)} stimuli, "
          f"{len(definition.slots)} listener slots of {n_trials} trials; loudness {definition.target_lufs} LUFS"
          + ("; headphone check" if definition.headphone else "")
          + (f"; {len(definition.questionnaire)} own questions" if definition.questionnaire else ""))
    print("  conditions: " + "; ".join(f"{definition.labels.get(c, c)} = {c}" for c in definition.conditions))
    for note in definition.notes:
        print(f"  {note}")
    print(f"next: evalkit listen serve {args.out}")
    return 0


def _listen_serve(args: argparse.Namespace) -> int:
    from evalkit.listening.serve import serve

    return serve(args.test_dir, host=args.host, port=args.port, admin_token=args.admin_token,
                 base_url_path=args.base_url_path, completion_code=args.completion_code,
                 prefetch=not args.no_prefetch, slot_idle_minutes=args.slot_idle_minutes)


def _listen_panel(args: argparse.Namespace, command: str):
    from evalkit.labels import parse_label_options
    from evalkit.listening.errors import ListenError
    from evalkit.listening.report import csv_panel, folder_panel

    folder = args.test_dir if command == "analyze" else args.pilot
    if (folder is None) == (args.ratings is None):
        raise ListenError(f"listen {command}: give either {'TEST_DIR' if command == 'analyze' else '--pilot TEST_DIR'}"
                          f" or --ratings FILE.csv")
    try:
        overrides = parse_label_options(args.label or [])
    except ValueError as exc:
        raise ListenError(str(exc)) from None
    if args.ratings is not None:
        if args.exclude_headphone_fail:
            raise ListenError(f"{args.ratings}: a ratings CSV has no headphone check (--exclude-headphone-fail "
                              f"needs a test folder)")
        if getattr(args, "min_played", None) is not None:
            raise ListenError(f"{args.ratings}: a ratings CSV has no listening times (--min-played needs a test "
                              "folder)")
        return csv_panel(args.ratings, args.include_incomplete, overrides)
    return folder_panel(folder, args.include_incomplete, args.exclude_headphone_fail, overrides,
                        min_played_pct=getattr(args, "min_played", None))


def _listen_analyze(args: argparse.Namespace) -> int:
    import json

    from evalkit.listening.report import format_report, panel_report

    report = panel_report(_listen_panel(args, "analyze"), test=args.test, versus=args.versus)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def _listen_plan(args: argparse.Namespace) -> int:
    import json

    from evalkit.listening.report import plan_report
    from evalkit.listening.report_text import format_plan

    plan = plan_report(_listen_panel(args, "plan"), args.difference, power=args.power, alpha=args.alpha,
                       pairs=args.pairs, items=args.items, versus=args.versus, sims=args.sims, seed=args.seed)
    print(json.dumps(plan) if args.json else format_plan(plan))
    return 0


def _report(args: argparse.Namespace) -> int:
    from evalkit.reports.html import write_report
    from evalkit.reports.rundata import ReportError

    if args.examples < 0:
        raise ReportError(f"--examples {args.examples}: expected 0 or more items")
    if not args.excerpt > 0:
        raise ReportError(f"--excerpt {args.excerpt}: expected a positive number of seconds")
    path = write_report(args.run_dir, args.listening, args.output, examples=args.examples, excerpt_s=args.excerpt)
    size_mb = path.stat().st_size / 1e6
    print(f"report ({size_mb:.1f} MB): {path}")
    return 0


def _listen_filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--include-incomplete", action="store_true",
                        help="also analyse assessors who did not finish all their trials")
    parser.add_argument("--exclude-headphone-fail", action="store_true",
                        help="leave out assessors who did not pass the test's headphone check")
    parser.add_argument("--label", action="append", metavar="SPEC=NAME",
                        help="display label of a condition (name or spec); repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalkit", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, third-party warnings and log lines included")
    sub = parser.add_subparsers(dest="command", required=True)

    codecs = sub.add_parser("codecs", help="codec families").add_subparsers(dest="action", required=True)
    codecs_list = codecs.add_parser("list", help="every family, its parameters and bitrates")
    codecs_list.add_argument("--json", action="store_true", help="one JSON list of families")
    codecs_list.add_argument("--plugin", action="append", metavar="FILE.py",
                             help="also load this plugin file (repeatable; as `plugins:` in a run config)")
    codecs_list.set_defaults(func=_codecs_list)

    weights = sub.add_parser("weights", help="pretrained weights").add_subparsers(dest="action", required=True)
    weights_status = weights.add_parser("status", help="where each model's weights are")
    weights_status.add_argument("--json", action="store_true", help="one JSON list of models")
    weights_status.set_defaults(func=_weights_status)
    fetch = weights.add_parser("fetch", help="download one model's weights (needs internet)")
    fetch.add_argument("name", help="model name as listed by `evalkit weights status`")
    fetch.set_defaults(func=_weights_fetch)

    metrics = sub.add_parser("metrics", help="objective metrics").add_subparsers(dest="action", required=True)
    metrics_list = metrics.add_parser("list", help="the metric registry with metadata")
    metrics_list.add_argument("--json", action="store_true", help="one JSON list of metric metadata")
    metrics_list.add_argument("--plugin", action="append", metavar="FILE.py",
                              help="also load this metric plugin file (repeatable; as `plugins:` in a run config)")
    metrics_list.set_defaults(func=_metrics_list)

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
    score.set_defaults(func=_score)

    run = sub.add_parser("run", help="evaluate a dataset through a grid of codec variants (resumable)")
    run.add_argument("config", help="YAML run configuration (see configs/demo.yaml)")
    run.add_argument("--workers", type=int, help="worker processes (overrides the config)")
    run.add_argument("--executor", choices=["local", "dask"], default="local")
    run.add_argument("--scheduler", help="Dask scheduler address (tcp://...); default: a LocalCluster")
    run.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                     help="seconds to wait for the Dask scheduler before giving up (default 10)")
    run.add_argument("--fresh", action="store_true",
                     help="delete the store, caches and exports evalkit wrote, and start over")
    run.set_defaults(func=_run)

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
    summary.set_defaults(func=_summary)

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
    cmp.set_defaults(func=_compare)

    klt = sub.add_parser("klt", help="KLT-truncated RVQ variants").add_subparsers(dest="action", required=True)
    analyze = klt.add_parser("analyze", help="eigen-spectrum and storage/complexity of a KLT variant")
    analyze.add_argument("spec", help="klt?base=...&dim=... or a base RVQ spec (e.g. encodec-24khz?weights=random)")
    analyze.add_argument("--dim", type=int, help="kept dimensions (default: the spec's, else full)")
    analyze.add_argument("--n-cov", type=int, help="codebooks used for the statistics (default 2)")
    analyze.add_argument("--json", action="store_true", help="one JSON object (dim, full_dim, savings, spectrum)")
    analyze.set_defaults(func=_klt_analyze)

    from evalkit.training.qincodec.cli import add_parser as add_qincodec_parser

    add_qincodec_parser(sub)

    listen = sub.add_parser("listen", help="listening tests (MUSHRA, AB, ABX, ACR, DCR, BS.1116)").add_subparsers(
        dest="action", required=True)
    prepare = listen.add_parser("prepare", help="stimuli and a test definition from an evaluation run")
    prepare.add_argument("--run", required=True, help="run folder (holds results.sqlite and cache/decoded)")
    prepare.add_argument("--design", required=True, choices=["mushra", "ab", "abx", "acr", "dcr", "bs1116"],
                         help="mushra (BS.1534-3), ab, abx, acr / dcr (ITU-T P.800/P.808), bs1116 (ITU-R BS.1116-3)")
    prepare.add_argument("--items", type=int, help="number of items (default: all with every condition)")
    prepare.add_argument("--conditions", nargs="+", metavar="SPEC", help="codec specs of the run (default: all)")
    prepare.add_argument("--listeners", type=int, default=12, help="listener slots for the balanced design")
    prepare.add_argument("--seed", type=int, default=0, help="seed of item choice and orders (default 0)")
    prepare.add_argument("--repeats", type=int, default=1, help="ab/abx: presentations of each pair per listener")
    prepare.add_argument("--excerpt-seconds", type=float, default=10.0,
                         help="excerpt length in s (default 10; items up to 1.2 times this are kept whole)")
    prepare.add_argument("--loudness-lufs", type=float, default=-23.0,
                         help="loudness of every stimulus, LUFS (default -23; lowered for all if one would clip)")
    prepare.add_argument("--label", action="append", metavar="SPEC=NAME",
                         help="display label of a condition in outputs (repeatable; default: short labels)")
    prepare.add_argument("--instructions", metavar="FILE", help="Markdown instructions for the welcome page")
    prepare.add_argument("--consent", metavar="FILE", help="Markdown consent text (the participant must agree)")
    prepare.add_argument("--trial-instructions", metavar="FILE",
                         help='Markdown shown above every trial, or FILE.json: {"ITEM" or "*": Markdown}')
    prepare.add_argument("--require-training", action="store_true", help="no 'skip training' button")
    prepare.add_argument("--headphone-check", action="store_true",
                         help="Huggins-pitch headphone screening before training (results stored)")
    prepare.add_argument("--questionnaire", metavar="FILE.yaml",
                         help="your finish-page questions (id, text, type choice|text|number, choices, required), "
                              "asked after age range, expertise, headphones and comments")
    prepare.add_argument("--out", required=True, help="new test folder")
    prepare.set_defaults(func=_listen_prepare)
    serve = listen.add_parser("serve", help="run the test in a browser (Streamlit)")
    serve.add_argument("test_dir", help="folder made by `evalkit listen prepare`")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--admin-token", help="token of the admin page (default: $EVALKIT_ADMIN_TOKEN, else a random "
                                             "one, printed; the environment keeps it out of `ps`)")
    serve.add_argument("--base-url-path", default="", metavar="PATH",
                       help="serve under /PATH/ (behind a reverse proxy)")
    serve.add_argument("--completion-code", metavar="CODE", help="shown on the end page (e.g. for Prolific)")
    serve.add_argument("--no-prefetch", action="store_true",
                       help="do not fetch the next trial's audio during the current trial")
    serve.add_argument("--slot-idle-minutes", type=float, default=30.0, metavar="N",
                       help="an unfinished participant idle for N minutes gives its design slot back (default 30)")
    serve.set_defaults(func=_listen_serve)
    analyze_l = listen.add_parser("analyze", help="post-screening, means with 95%% CIs, mixed-model comparisons")
    analyze_l.add_argument("test_dir", nargs="?", help="test folder (its listening.sqlite)")
    analyze_l.add_argument("--ratings", help="long-format CSV: assessor,item,condition,score")
    analyze_l.add_argument("--test", choices=["mixed", "t", "wilcoxon", "permutation"], default="mixed",
                           help="MUSHRA comparison: mixed model on all ratings (default), paired t, Wilcoxon or "
                                "sign-flip permutation on assessor means")
    analyze_l.add_argument("--versus", metavar="CONDITION",
                           help="compare CONDITION (name, spec or label) with each other condition")
    analyze_l.add_argument("--min-played", type=float, metavar="P",
                           help="leave out trials in which a stimulus was heard for less than P %% of its length "
                                "(server-checked listening time; test folder only)")
    _listen_filter_options(analyze_l)
    analyze_l.add_argument("--json", action="store_true", help="one JSON object")
    analyze_l.set_defaults(func=_listen_analyze)
    plan = listen.add_parser("plan", help="MUSHRA panel size: assessors needed to detect a difference (simulated)")
    plan.add_argument("--pilot", metavar="TEST_DIR", help="pilot test folder")
    plan.add_argument("--ratings", help="pilot ratings CSV: assessor,item,condition,score")
    plan.add_argument("--difference", type=float, required=True, metavar="D",
                      help="true difference to detect, in MUSHRA points")
    plan.add_argument("--power", type=float, default=0.8, help="target power (default 0.8)")
    plan.add_argument("--alpha", type=float, default=0.05, help="family-wise alpha (default 0.05)")
    plan.add_argument("--pairs", type=int, help="comparisons sharing alpha (default: the pilot analysis' pairs)")
    plan.add_argument("--items", type=int, help="items per assessor in the planned test (default: the pilot's)")
    plan.add_argument("--versus", metavar="CONDITION", help="plan CONDITION against each other condition")
    plan.add_argument("--sims", type=int, default=2000, help="simulated panels per panel size (default 2000)")
    plan.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    _listen_filter_options(plan)
    plan.add_argument("--json", action="store_true", help="one JSON object")
    plan.set_defaults(func=_listen_plan)

    report = sub.add_parser("report", help="one self-contained HTML report of a run (and a listening test)")
    report.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `evalkit run`")
    report.add_argument("--listening", metavar="TEST_DIR", help="a listening test folder with ratings")
    report.add_argument("-o", "--output", metavar="FILE", help="report file (default: RUN_DIR/report.html)")
    report.add_argument("--examples", type=int, default=3, help="items with inline audio examples (default 3; 0: none)")
    report.add_argument("--excerpt", type=float, default=5.0, help="seconds of each audio example (default 5)")
    report.set_defaults(func=_report)

    from evalkit.reports.plot_cli import add_parser as add_plot_parser

    add_plot_parser(sub)

    demo = sub.add_parser("demo", help="every demo item through every codec family")
    demo.add_argument("--data", default="data/demo", help="folder of audio files (default: data/demo)")
    demo.add_argument("--seconds", type=float, default=2.0, help="seconds of each item to code (default 2)")
    demo.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    demo.set_defaults(func=_demo)
    return parser


def _restore_sigint() -> None:
    """Honour SIGINT even when started with it ignored (a background job of a non-interactive shell inherits
    SIG_IGN), so `kill -INT` stops a run or a listening server as Ctrl-C does."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:  # the command itself, not a call from Python code, which keeps its own signal handling
        _restore_sigint()
    from evalkit.logs import configure_console

    configure_console(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except _user_errors() as exc:
        from evalkit.messages import shown

        message = str(exc) if getattr(exc, "terminal_safe", False) else shown(exc)  # names escaped, one line
        print(f"evalkit: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a run's units (a run reports its own count)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
