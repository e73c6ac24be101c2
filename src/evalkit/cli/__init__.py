"""``evalkit`` command line: one module per command group parses arguments, calls the library and prints.

Every user error is a :class:`evalkit.errors.UserError` (or a missing file), printed here as one line with exit
code 2. Imports of evalkit's modules (and through them numpy, torch, scipy, pandas) happen inside the commands
that need them, so that ``evalkit --help`` and the list commands start at once (tests/cli/test_startup.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from evalkit.cli import codecs, listen, metrics, plot, qincodec, reproduce, results, run
from evalkit.cli._base import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from evalkit.errors import UserError

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "build_parser", "main"]

DESCRIPTION = ("evalkit: compare audio codecs with objective metrics and listening tests. Bad input ends with one "
               "line and exit code 2.")
#: Command groups in the order ``evalkit --help`` lists them.
GROUPS = (codecs, metrics, run, results, plot, listen, qincodec, reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalkit", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, third-party warnings and log lines included")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
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
    except (UserError, FileNotFoundError) as exc:
        from evalkit.messages import shown

        message = str(exc) if getattr(exc, "terminal_safe", False) else shown(exc)  # names escaped, one line
        print(f"evalkit: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a run's units (a run reports its own count)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
