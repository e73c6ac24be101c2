"""Runner benchmark: resume cost and memory streaming, measured in one run.

1. Runs configs/demo.yaml into a temporary output twice (first run fresh) and prints the rerun / first-run
   wall-time ratio (target <= 0.05).
2. Runs N and 10·N synthetic 2 s items (low-pass anchor; si_sdr + mel_distance; one worker) each in a fresh
   process and prints their peak RSS (target: no growth with the number of items).

Usage: .venv/bin/python benchmarks/runner_bench.py [--items 6]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
import numpy as np, soundfile as sf
from pathlib import Path
from evalkit.runner import run_evaluation, validate_config
n, out = int(sys.argv[1]), Path(sys.argv[2])
data = out / "data"
data.mkdir(parents=True)
rng = np.random.default_rng(0)
for i in range(n):
    sf.write(data / f"x{i:04d}.wav", (0.1 * rng.standard_normal(88200)).astype(np.float32), 44100, subtype="FLOAT")
raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "codecs": [{"spec": "lowpass?cutoff_hz=7000"}],
       "metrics": ["si_sdr", "mel_distance"], "output": str(out / "run"), "workers": 1}
config, specs = validate_config(raw, out)
t0 = time.perf_counter()
run_evaluation(config, specs, progress=False)
print(json.dumps({"items": n, "seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def rerun_ratio() -> None:
    from evalkit.runner import run_evaluation, validate_config

    raw = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        raw["output"] = str(Path(tmp) / "demo")
        config, specs = validate_config(raw, ROOT / "configs")  # paths are relative to the config file
        t0 = time.perf_counter()
        first = run_evaluation(config, specs, fresh=True, progress=False)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = run_evaluation(config, specs, progress=False)
        t_again = time.perf_counter() - t0
    print(f"demo config: first run {t_first:.2f} s ({first.units_run} units run, "
          f"{len(first.variants_skipped)} variants skipped for missing weights); rerun {t_again:.3f} s "
          f"({again.units_run} units run); rerun/first = {t_again / t_first:.4f} (target <= 0.05)")


def memory(items: int) -> None:
    rows = []
    for n in (items, 10 * items):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, str(n), tmp], check=True, capture_output=True,
                                 text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    for r in rows:
        print(f"{r['items']:>5} items x 2 s: peak RSS {r['peak_rss_mb']:.0f} MB, {r['seconds']:.1f} s")
    print(f"peak RSS ratio 10N/N = {rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f} (target ~1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=6)
    args = parser.parse_args()
    rerun_ratio()
    memory(args.items)


if __name__ == "__main__":
    main()
