"""``evalkit.stats`` is pure: its modules import nothing from evalkit outside the package itself, and no
third-party package but numpy, scipy, statsmodels and pandas (threadpoolctl optionally, to pin BLAS threads)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import evalkit.stats

STATS = Path(evalkit.stats.__file__).parent
THIRD_PARTY = {"numpy", "scipy", "statsmodels", "pandas", "threadpoolctl"}


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import anywhere in the file (relative ones resolved)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative: inside evalkit.stats (or above it, which is evalkit)
                anchor = ["evalkit", "stats", *path.relative_to(STATS).parent.parts]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                name = ".".join([*anchor, name] if name else anchor)
            found.append((name, node.lineno))
    return found


def test_stats_imports_nothing_from_evalkit_and_only_the_numeric_stack():
    files = sorted(STATS.rglob("*.py"))
    assert len(files) >= 10  # the package is where this test thinks it is
    bad = []
    for path in files:
        for name, line in _imports(path):
            top = name.split(".")[0]
            if name == "evalkit" or (top == "evalkit" and not name.startswith("evalkit.stats")):
                bad.append(f"{path.name}:{line} imports {name}")
            elif top not in {"evalkit", "__future__", *THIRD_PARTY} and top not in sys.stdlib_module_names:
                bad.append(f"{path.name}:{line} imports {name} (not the numeric stack)")
    assert not bad, "\n".join(bad)
