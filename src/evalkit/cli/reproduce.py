"""``evalkit reproduce NAME [--out DIR] [--scale full|tiny] [--offline]``: a seed paper's experiments with one
command. Argument checks and printing only; the work is in :mod:`evalkit.recipes.run`, imported by the command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: the recipes ``--help`` names (the driver checks the name against :data:`evalkit.recipes.RECIPES`)
NAMES = "qincodec or klt"


def add_parsers(sub) -> None:
    """Register ``reproduce`` on an argparse subparsers object."""
    cmd = sub.add_parser("reproduce", help="rerun a seed paper's experiments end to end (run, figures, tables, "
                                           "listening test) and write one HTML page beside the paper's claims")
    cmd.add_argument("name", nargs="?", metavar="NAME", help=f"the paper: {NAMES}")
    cmd.add_argument("--out", type=Path, metavar="DIR",
                     help="output folder (default runs/papers/NAME, runs/papers/NAME-tiny at tiny scale); a rerun "
                          "into it reuses every finished unit and keeps the listening tests and their answers")
    cmd.add_argument("--scale", default="full", metavar="full|tiny",
                     help="full (default): the paper's configuration, pretrained weights (fetched when missing and "
                          "the network allows); tiny: the same pipeline at test size, random weights, labelled")
    cmd.add_argument("--offline", action="store_true", help="never download pretrained weights")
    cmd.set_defaults(func=reproduce_command)


def reproduce_command(args: argparse.Namespace) -> int:
    from evalkit.messages import shown
    from evalkit.recipes.run import reproduce

    done = reproduce(args.name, args.out, scale=args.scale, offline=True if args.offline else None)
    for a in done.artifacts:  # the unavailable variants were logged, one line each, as the recipe found them
        if a.kind == "listening":
            print(shown(f"listening test {a.key}: evalkit listen serve {a.path}"), file=sys.stderr)
    outputs, missing = sum(a.kind != "unavailable" for a in done.artifacts), len(done.unavailable)
    listed = " (listed on the page)" if missing else ""
    print(f"{outputs} output{'s' * (outputs != 1)}, {missing} unavailable variant{'s' * (missing != 1)}{listed}; "
          "page:", file=sys.stderr)
    print(shown(str(done.page)))
    return 0
