"""Filling numba's on-disk caches once per install, so that no run pays for JIT compilation.

ViSQOL's kernels (``visqol.numba_accel``) and librosa's (DNSMOS features) are ``cache=True`` numba functions:
compiled on first use (tens of seconds each on a fresh install, in every worker at once) and then loaded from
numba's cache, which for a writable install lives in the packages' own ``__pycache__`` folders inside the
virtual environment (``NUMBA_CACHE_DIR``, when set, takes its place; worker processes inherit it). Set-up
(``scripts/setup_env.sh``) runs ``python -m evalkit.metrics.jit_cache``, which runs every pair metric once on
a synthetic pair (:func:`evalkit.metrics.warmup.warm_up`) and reports what was compiled and what was loaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

JIT_LIBRARIES = ("visqol", "librosa")  # packages whose numba functions the metrics call


@dataclass(frozen=True)
class JitCacheReport:
    """What warming did: seconds, and per library the signatures compiled (cache misses) and loaded (hits)."""

    seconds: float
    compiled: dict[str, int]
    loaded: dict[str, int]


def numba_stats(libraries: Iterable[str] = JIT_LIBRARIES) -> tuple[dict[str, int], dict[str, int]]:
    """Cache misses (compiled here) and hits (loaded from disk) of the numba functions of ``libraries``
    imported so far in this process, per library (functions with explicit signatures, compiled at import into
    NumPy ufuncs, as most of librosa's, keep no such counts: they are cached all the same)."""
    compiled, loaded = {}, {}
    seen: set[int] = set()  # a function imported into several modules counts once
    for name, module in list(sys.modules.items()):
        library = name.partition(".")[0]
        if library not in libraries or module is None:
            continue
        for value in list(vars(module).values()):
            if not type(value).__module__.startswith("numba."):  # (lazy modules raise on a probing getattr)
                continue
            dispatcher = getattr(value, "_dispatcher", value)  # a guvectorize'd function wraps a dispatcher
            stats = getattr(dispatcher, "stats", None)
            if stats is None or not hasattr(stats, "cache_hits") or id(dispatcher) in seen:
                continue
            seen.add(id(dispatcher))
            compiled[library] = compiled.get(library, 0) + sum(stats.cache_misses.values())
            loaded[library] = loaded.get(library, 0) + sum(stats.cache_hits.values())
    return compiled, loaded


def warm_caches(metric_names: Iterable[str] | None = None) -> JitCacheReport:
    """Run the pair metrics (all, or ``metric_names``) once in this process; see the module docstring."""
    from evalkit.metrics import PAIR_METRICS, get_metrics
    from evalkit.metrics.warmup import warm_up

    metrics = list(PAIR_METRICS.values()) if metric_names is None else get_metrics(metric_names)
    t0 = time.perf_counter()
    warm_up(metrics)
    compiled, loaded = numba_stats()
    return JitCacheReport(time.perf_counter() - t0, compiled, loaded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.metrics.jit_cache", description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", help="comma-separated metric names (default: every pair metric)")
    args = parser.parse_args(argv)
    report = warm_caches(args.metrics.split(",") if args.metrics else None)
    counts = ", ".join(f"{lib} {report.compiled.get(lib, 0)} compiled / {report.loaded.get(lib, 0)} loaded"
                       for lib in JIT_LIBRARIES)
    print(f"numba caches warm in {report.seconds:.1f} s ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
