"""``evalkit run CONFIG`` (a dataset through a grid of codec variants) and ``evalkit demo``."""

from __future__ import annotations

import argparse
import sys

from evalkit.cli._base import EXIT_INTERRUPTED


def add_parsers(sub) -> None:
    """Register ``run`` and ``demo`` on an argparse subparsers object."""
    run = sub.add_parser("run", help="evaluate a dataset through a grid of codec variants (resumable)")
    run.add_argument("config", help="YAML run configuration (see configs/demo.yaml)")
    run.add_argument("--workers", type=int,
                     help="worker processes (overrides the config; 0 runs units in this process, without crash "
                          "isolation)")
    run.add_argument("--executor", choices=["local", "dask", "slurm"],
                     help="where units run (overrides the config's executor; default local)")
    run.add_argument("--scheduler", help="Dask scheduler address (tcp://...); default: a LocalCluster")
    slurm = run.add_argument_group("Slurm (--executor slurm: Dask workers as Slurm jobs, cancelled on exit)")
    slurm.add_argument("--slurm-partition", metavar="P", help="partition (default: the cluster's default)")
    slurm.add_argument("--slurm-jobs", type=int, metavar="N", help="Slurm jobs, one Dask worker each (default 1)")
    slurm.add_argument("--slurm-cores", type=int, metavar="C", help="cores per job (default 1)")
    slurm.add_argument("--slurm-memory", metavar="SIZE", help="memory per job, e.g. 8GB (default 4GB)")
    slurm.add_argument("--slurm-walltime", metavar="HH:MM:SS", help="time limit per job (default 01:00:00)")
    run.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                     help="seconds to wait for the Dask scheduler before giving up (default 10)")
    run.add_argument("--log", nargs="+", choices=["tensorboard", "wandb"], metavar="TRACKER",
                     help="send the finished run's summary table and rate-quality figures to tensorboard "
                          "(RUN_DIR/tensorboard) and/or wandb (honours WANDB_MODE=offline); adds to the config's "
                          "log: list; needs the `tensorboard` / `wandb` extra")
    run.add_argument("--fresh", action="store_true",
                     help="delete the store, caches and exports evalkit wrote, and start over")
    run.add_argument("--offline", action="store_true",
                     help="do not try to download missing pretrained EnCodec/DAC weights (as EVALKIT_OFFLINE=1); "
                          "their variants are skipped")
    run.set_defaults(func=run_command)

    demo = sub.add_parser("demo", help="every demo item through every codec family")
    demo.add_argument("--data", default="data/demo", help="folder of audio files (default: data/demo)")
    demo.add_argument("--seconds", type=float, default=2.0, help="seconds of each item to code (default 2)")
    demo.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    demo.set_defaults(func=demo_command)


def _fetch_weights(specs, offline: bool) -> None:
    """Download the missing pretrained weights the run needs (10 s reachability check); offline, one line each."""
    from evalkit.codecs.weights_fetch import FetchStatus, fetch_missing

    for result in {r.model: r for r in fetch_missing(specs, offline=offline or None).values()}.values():
        if result.status is FetchStatus.FETCHED:
            print(result.message, file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evalkit.logs import log_to_file
    from evalkit.runner import ConfigError, load_config, run_evaluation
    from evalkit.runner.config import override_executor
    from evalkit.runner.output import check_output
    from evalkit.runner.run import RunInterrupted, output_lock

    config, specs = load_config(args.config)
    updates = {}
    if args.workers is not None:
        if args.workers < 0:
            raise ConfigError(args.config, [f"--workers: expected an integer >= 0, got {args.workers}"])
        updates["workers"] = args.workers
    if args.connect_timeout <= 0:
        raise ConfigError(args.config, [f"--connect-timeout: expected seconds > 0, got {args.connect_timeout:g}"])
    config = override_executor(config.model_copy(update=updates), {
        "kind": args.executor, "scheduler": args.scheduler, "slurm_partition": args.slurm_partition,
        "slurm_jobs": args.slurm_jobs, "slurm_cores": args.slurm_cores, "slurm_memory": args.slurm_memory,
        "slurm_walltime": args.slurm_walltime}, args.config)
    from evalkit.reports.tracking import check_available

    trackers = check_available([*config.log, *(args.log or [])])  # a missing package stops before the run
    output = Path(config.output)
    check_output(config)  # before the lock file and run.log are written into it
    with output_lock(output):  # creates the folder; exit 2 when unwritable or used by another run
        log_to_file(output / "run.log")  # third-party chatter and warnings included
        _fetch_weights(specs, args.offline)
        try:
            report = run_evaluation(config, specs, fresh=args.fresh, connect_timeout_s=args.connect_timeout)
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
    if trackers:
        from evalkit.reports.tracking import log_run

        for line in log_run(output, trackers):
            print(shown(f"logged to {line}"))
    return 0


def demo_command(args: argparse.Namespace) -> int:
    from evalkit.demo import format_rows, run_demo

    rows = list(run_demo(args.data, max_seconds=args.seconds, device=args.device))
    print(format_rows(rows))
    if any(r.weights.startswith("random") for r in rows):
        print("\nNOTE: rows marked 'random' use the official architecture with random weights (no pretrained "
              "weights on this machine): their audio is noise-like; lengths and bitrates are real.")
    return 0
