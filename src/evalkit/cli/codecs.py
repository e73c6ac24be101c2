"""``evalkit codecs list``, ``evalkit weights status|fetch`` and ``evalkit klt analyze``."""

from __future__ import annotations

import argparse
import sys

from evalkit.cli._base import print_json


def add_parsers(sub) -> None:
    """Register the codec, weights and KLT commands on an argparse subparsers object."""
    codecs = sub.add_parser("codecs", help="codec families").add_subparsers(dest="action", required=True)
    codecs_list = codecs.add_parser("list", help="every family, its parameters and bitrates")
    codecs_list.add_argument("--json", action="store_true", help="one JSON list of families")
    codecs_list.add_argument("--plugin", action="append", metavar="FILE.py",
                             help="also load this plugin file (repeatable; as `plugins:` in a run config)")
    codecs_list.set_defaults(func=codecs_list_command)

    weights = sub.add_parser("weights", help="pretrained weights").add_subparsers(dest="action", required=True)
    weights_status = weights.add_parser("status", help="where each model's weights are")
    weights_status.add_argument("--json", action="store_true", help="one JSON list of models")
    weights_status.set_defaults(func=weights_status_command)
    fetch = weights.add_parser("fetch", help="download one model's weights (needs internet)")
    fetch.add_argument("name", help="model name as listed by `evalkit weights status`")
    fetch.set_defaults(func=weights_fetch_command)

    klt = sub.add_parser("klt", help="KLT-truncated RVQ variants").add_subparsers(dest="action", required=True)
    analyze = klt.add_parser("analyze", help="eigen-spectrum and storage/complexity of a KLT variant")
    analyze.add_argument("spec", help="klt?base=...&dim=... or a base RVQ spec (e.g. encodec-24khz?weights=random)")
    analyze.add_argument("--dim", type=int, help="kept dimensions (default: the spec's, else full)")
    analyze.add_argument("--n-cov", type=int, help="codebooks used for the statistics (default 2)")
    analyze.add_argument("--json", action="store_true", help="one JSON object (dim, full_dim, savings, spectrum)")
    analyze.set_defaults(func=klt_analyze_command)


def codecs_list_command(args: argparse.Namespace) -> int:
    from evalkit.codecs import load_plugin_files
    from evalkit.codecs.catalog import catalog_records, render_catalog

    load_plugin_files(args.plugin or ())
    if args.json:
        print_json(catalog_records())
        return 0
    print(render_catalog(), end="")
    return 0


def weights_status_command(args: argparse.Namespace) -> int:
    from evalkit.codecs.weights import WEIGHTS_ENV, status

    rows = status()
    if args.json:
        print_json([{"name": r.name, "filename": r.filename, "path": str(r.path) if r.path else None,
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


def weights_fetch_command(args: argparse.Namespace) -> int:
    from evalkit.codecs.spec import SpecError
    from evalkit.codecs.weights import get_entry
    from evalkit.codecs.weights_fetch import FetchStatus, fetch_model

    try:
        get_entry(args.name)
    except KeyError as exc:
        raise SpecError(exc.args[0]) from None
    result = fetch_model(args.name)  # progress bar on stderr; a failure is one logged line
    if result.path is None:
        return 1
    if result.status is FetchStatus.FETCHED:
        print(result.message, file=sys.stderr)
    print(result.path)
    return 0


def klt_analyze_command(args: argparse.Namespace) -> int:
    import json

    from evalkit.codecs.klt_report import analyze, format_analysis

    result = analyze(args.spec, dim=args.dim, n_cov=args.n_cov)
    print(json.dumps(result) if args.json else format_analysis(result))
    return 0
