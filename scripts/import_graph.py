"""Measure evalkit's structure from its source: import cycles, imports against the layering, and code outside
``codecs/`` that inspects family names to learn what a variant is.

Usage: ``python scripts/import_graph.py [--json] [--src src/evalkit]``

Every ``import`` statement counts, module level or inside a function (a lazy import is still a dependency).
The layering (which package may import which) is :data:`ALLOWED`; ``tests/test_architecture.py`` holds the
codebase to it.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

#: Leaf modules every package may import (pure helpers with no evalkit imports of their own, or nearly).
BASE = {"audio", "hashing", "versions", "logs", "messages", "_lazy", "errors", "plugin_files", "native_memory",
        "__init__"}
#: package -> the packages it may import (besides itself and BASE). ``None``: anything (the outer shells).
#: ``stats`` is the pure statistics package (numpy, scipy, statsmodels, pandas only); ``labels`` and
#: ``worker_setup`` are loose modules of that time, measured with the rules of where they belong.
#: ``listening.web`` (the Streamlit app of ``listen serve``) is a room of its own: an outer shell like the CLI, whose
#: admin page shows the report's listening tables and figures; the rest of ``listening`` may not import it.
STATS = {"stats"}
ALLOWED: dict[str, set[str] | None] = {
    "stats": set(),
    "codecs": set(),
    "metrics": set(),
    "labels": set(),
    "training": {"codecs", "metrics"},
    "worker_setup": {"codecs", "metrics"},
    "runner": {"codecs", "metrics", "worker_setup", *STATS},
    "listening": {"runner", "labels", *STATS},
    "reports": {"runner", "metrics", "listening", "labels", *STATS},
    "recipes": {"codecs", "metrics", "runner", "listening", "reports", "training", "labels", *STATS},
    "listening.web": None,
    "cli": None,
    "__main__": None,  # `python -m evalkit`: the command line
    "api": None,
    "demo": None,
}
#: String literals that reveal code deciding what a variant is from its family name or parameters.
FAMILY_TEST = re.compile(r"""(['"])(klt|lowpass|decoded|cutoff_hz)\b""")


def room(module: str) -> str:
    """The package (or top-level module) a dotted module name under ``evalkit`` belongs to; ``listening.web`` is
    one of its own (a shell).

    >>> room("evalkit.listening.web.app"), room("evalkit.listening.model"), room("evalkit")
    ('listening.web', 'listening', '__init__')
    """
    parts = module.split(".")
    if parts[1:3] == ["listening", "web"]:
        return "listening.web"
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, src: Path) -> str:
    rel = path.relative_to(src.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """evalkit modules imported anywhere in ``path`` (resolved to modules that exist)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith("evalkit"):
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def wrong_way(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports that the layering in :data:`ALLOWED` does not allow, as (importer, imported) modules."""
    bad = []
    for src_module, targets in graph.items():
        src_room = room(src_module)
        allowed = ALLOWED.get(src_room, set())
        if allowed is None:
            continue
        for target in targets:
            target_room = room(target)
            if target_room in (src_room, *BASE) or target_room in allowed:
                continue
            if src_room in BASE and target_room in BASE:
                continue
            bad.append((src_module, target))
    return sorted(bad)


def family_tests(src: Path) -> dict[str, list[int]]:
    """Lines outside ``codecs/`` (and the training stages, and the paper recipes, which write the specs of the
    paper's variants) whose string literals name a family or its parameters: places that work out what a variant
    is instead of reading its record."""
    hits: dict[str, list[int]] = {}
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if rel.parts[0] in ("codecs", "training", "recipes"):
            continue
        lines = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if FAMILY_TEST.search(line)]
        if lines:
            hits[str(rel)] = lines
    return hits


def measure(src: Path) -> dict:
    paths = {module_name(p, src): p for p in sorted(src.rglob("*.py"))}
    known = set(paths)
    graph = {m: imports_of(p, m, known) for m, p in paths.items()}
    arrows = wrong_way(graph)
    by_rooms: dict[str, int] = defaultdict(int)
    for a, b in arrows:
        by_rooms[f"{room(a)}->{room(b)}"] += 1
    families = family_tests(src)
    return {
        "modules": len(paths),
        "lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in paths.values()),
        "cycles": cycles(graph),
        "wrong_way": [f"{a} -> {b}" for a, b in arrows],
        "wrong_way_by_package": dict(sorted(by_rooms.items())),
        "family_tests": families,
        "family_test_lines": sum(len(v) for v in families.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "evalkit")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.src)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['modules']} modules, {result['lines']} lines")
    print(f"import cycles: {len(result['cycles'])}")
    for c in result["cycles"]:
        print("  " + " <-> ".join(c))
    print(f"imports against the layering: {len(result['wrong_way'])}")
    for k, v in result["wrong_way_by_package"].items():
        print(f"  {k}: {v}")
    print(f"lines outside codecs/ testing family names: {result['family_test_lines']} in "
          f"{len(result['family_tests'])} files")
    for f, lines in result["family_tests"].items():
        print(f"  {f}: {', '.join(map(str, lines))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
