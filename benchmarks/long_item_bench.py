"""Long-item benchmark: peak memory of `evalkit run` on one long mono 44.1 kHz item against its length.

For each length (minutes) a fresh process writes one synthetic item (a tone plus noise, float32 WAV), runs
`evalkit run` on it with one worker and prints the peak RSS (``ru_maxrss``) of the coordinator or of a worker
process, whichever is larger, the item's float32 size and the wall time. Memory should grow sublinearly with the length:
pairs longer than 30 s are scored in segments (:mod:`evalkit.metrics.segments`).

By default the codecs and metrics are those of configs/demo.yaml whose weights are on this machine; ``--codecs``
and ``--metrics`` pick fewer (the 60-minute case is only run with ``--hour``).

Usage: .venv/bin/python benchmarks/long_item_bench.py [--minutes 1 10] [--hour]
       [--codecs "lowpass?cutoff_hz=7000" "opus?bitrate_kbps=12"] [--metrics si_sdr mel_distance stoi]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
import numpy as np, soundfile as sf
from pathlib import Path
from evalkit.runner import run_evaluation, validate_config
minutes, out, codecs, metrics = float(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
rate, data = 44_100, out / "data"
data.mkdir(parents=True)
n = int(minutes * 60 * rate)
with sf.SoundFile(data / "long.wav", "w", rate, 1, subtype="FLOAT") as fh:  # written in blocks: bounded memory
    rng = np.random.default_rng(0)
    for start in range(0, n, rate * 10):
        t = np.arange(start, min(n, start + rate * 10)) / rate
        fh.write((0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "codecs": codecs, "metrics": metrics,
       "output": str(out / "run"), "workers": 1}
config, specs = validate_config(raw, out)
t0 = time.perf_counter()
report = run_evaluation(config, specs, progress=False)
import multiprocessing
multiprocessing.active_children()  # reaps worker processes that exited, so RUSAGE_CHILDREN counts them
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"minutes": minutes, "float32_mb": n * 4 / 2**20, "wall_s": time.perf_counter() - t0,
                  "units": report.units_run, "failed": report.units_failed, "peak_rss_mb": peak / 1024}))
"""


def demo_codecs() -> list[dict]:
    """The codec entries of configs/demo.yaml (variants without weights here are skipped by the run)."""
    import yaml

    return yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())["codecs"]


def measure(minutes: float, codecs: list, metrics) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, str(minutes), tmp, json.dumps(codecs),
                              json.dumps(metrics)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"minutes": minutes, "error": f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--hour", action="store_true", help="also run a 60-minute item")
    parser.add_argument("--codecs", nargs="+", help="codec specs (default: the demo config's codecs)")
    parser.add_argument("--metrics", nargs="+", help="metric names (default: applicable)")
    args = parser.parse_args()
    codecs = [{"spec": s} for s in args.codecs] if args.codecs else demo_codecs()
    metrics = args.metrics or "applicable"
    lengths = args.minutes + [60.0] * args.hour
    print(f"{'minutes':>8} {'float32 MB':>11} {'peak RSS MB':>12} {'RSS / float32':>14} {'wall s':>8}")
    for minutes in lengths:
        r = measure(minutes, codecs, metrics)
        if "error" in r:
            print(f"{minutes:>8g} {r['error']}")
            continue
        print(f"{minutes:>8g} {r['float32_mb']:>11.1f} {r['peak_rss_mb']:>12.0f} "
              f"{r['peak_rss_mb'] / r['float32_mb']:>14.1f} {r['wall_s']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
