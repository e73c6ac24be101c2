"""Codec cache benchmark: memory of a worker holding ``dac-44khz?n_codebooks=1…9`` (random weights).

Each configuration runs in a fresh process and prints its peak RSS: one variant, then all nine through the
worker's :class:`evalkit.runner.codec_cache.CodecCache` (one shared model), then all nine built separately (a
model each, as before the cache shared models). Prints the ratios (target: shared / one ≈ 1).

Usage: .venv/bin/python benchmarks/codec_cache_bench.py
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, resource, sys
import numpy as np
from evalkit.codecs import build_codec
from evalkit.runner.codec_cache import CodecCache
mode = sys.argv[1]
specs = [f"dac-44khz?n_codebooks={n}&weights=random" for n in (range(1, 10) if mode != "one" else [9])]
x = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 4410)).astype(np.float32)
cache = CodecCache()
held = [cache.get(s, "cpu") if mode != "separate" else build_codec(s, device="cpu").load() for s in specs]
for codec in held:
    codec.reconstruct(x, 44100)
models = len(cache.models) if mode != "separate" else len(held)
print(json.dumps({"mode": mode, "variants": len(specs), "models": models,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    rows = {}
    for mode in ("one", "shared", "separate"):
        out = subprocess.run([sys.executable, "-c", CHILD, mode], check=True, capture_output=True, text=True).stdout
        rows[mode] = json.loads(out.strip().splitlines()[-1])
        r = rows[mode]
        print(f"{mode:>8}: {r['variants']} variant(s), {r['models']} model(s) loaded, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")
    one = rows["one"]["peak_rss_mb"]
    print(f"peak RSS ratio shared/one = {rows['shared']['peak_rss_mb'] / one:.3f} (target ~1.0); "
          f"separate/one = {rows['separate']['peak_rss_mb'] / one:.3f}")


if __name__ == "__main__":
    main()
