"""CLI start-up: wall time of the quick commands against `python -c "import torch"`, best of N, one run.

Each command runs as a fresh process (the installed `evalkit` script, output discarded); the commands and the
torch import are interleaved so that load on a shared machine affects them alike. Prints each command's best
time and its ratio to the torch import (target <= 0.3).

Usage: .venv/bin/python benchmarks/cli_bench.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["codecs", "list"], ["metrics", "list"], ["weights", "status"])


EXIT_CODES: dict[str, int] = {}


def wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    EXIT_CODES[" ".join(argv[1:])] = done.returncode
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("evalkit")
    torch_argv = [sys.executable, "-c", "import torch"]
    best = {"import torch": float("inf"), **{" ".join(c): float("inf") for c in COMMANDS}}
    for _ in range(args.repeat):
        best["import torch"] = min(best["import torch"], wall(torch_argv))
        for command in COMMANDS:
            best[" ".join(command)] = min(best[" ".join(command)], wall([str(script), *command]))
    base = best["import torch"]
    print(f"best of {args.repeat}: python -c 'import torch' {base:.3f} s")
    for command in COMMANDS:
        name = " ".join(command)
        code = EXIT_CODES.get(name, 0)
        print(f"evalkit {name:<16} {best[name]:.3f} s  ratio to import torch {best[name] / base:.3f} (target <= 0.3)"
              + (f"  [exit code {code}]" if code else ""))


if __name__ == "__main__":
    main()
