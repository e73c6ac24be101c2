"""What every command module shares: exit codes and JSON printing."""

from __future__ import annotations

import json

EXIT_BAD_INPUT = 2
EXIT_STOPPED = 3  # a time budget ran out: state saved, rerun to continue
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def print_json(value: object) -> None:
    """Print ``value`` as indented JSON (paths and other objects as strings)."""
    print(json.dumps(value, indent=1, default=str))
