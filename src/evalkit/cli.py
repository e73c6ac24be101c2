"""``evalkit`` command line: parse, call the library, print. Bad input ends with one line and exit code 2."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from evalkit.audio import AudioError
from evalkit.codecs.spec import SpecError
from evalkit.codecs.weights import WeightsNotFound

EXIT_BAD_INPUT = 2


def _codecs_list(args: argparse.Namespace) -> int:
    from evalkit.codecs.catalog import render_catalog

    print(render_catalog(), end="")
    return 0


def _weights_status(args: argparse.Namespace) -> int:
    from evalkit.codecs.weights import WEIGHTS_ENV, status

    rows = status()
    for row in rows:
        where = f"{row.path} ({row.checksum} checksum)" if row.path else "MISSING"
        print(f"{row.name:<18} {row.filename:<34} {where}")
    missing = sum(r.path is None for r in rows)
    if missing:
        print(f"\n{missing} of {len(rows)} missing: `evalkit weights fetch NAME` downloads one (needs internet), "
              f"or copy the file into ${WEIGHTS_ENV} or the library cache shown by the error.")
    return 0


def _weights_fetch(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalkit", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    codecs = sub.add_parser("codecs", help="codec families").add_subparsers(dest="action", required=True)
    codecs.add_parser("list", help="every family, its parameters and bitrates").set_defaults(func=_codecs_list)

    weights = sub.add_parser("weights", help="pretrained weights").add_subparsers(dest="action", required=True)
    weights.add_parser("status", help="where each model's weights are").set_defaults(func=_weights_status)
    fetch = weights.add_parser("fetch", help="download one model's weights (needs internet)")
    fetch.add_argument("name", help="model name as listed by `evalkit weights status`")
    fetch.set_defaults(func=_weights_fetch)

    demo = sub.add_parser("demo", help="every demo item through every codec family")
    demo.add_argument("--data", default="data/demo", help="folder of audio files (default: data/demo)")
    demo.add_argument("--seconds", type=float, default=2.0, help="seconds of each item to code (default 2)")
    demo.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (AudioError, SpecError, WeightsNotFound, FileNotFoundError) as exc:
        print(f"evalkit: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
