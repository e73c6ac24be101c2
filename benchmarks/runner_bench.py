"""Runner benchmark: resume cost and memory streaming, measured in one run.

1. Runs configs/demo.yaml into a temporary output twice (first run fresh) and prints the rerun / first-run
   wall-time ratio (target <= 0.05).
2. Runs N and 10·N synthetic 2 s items (low-pass anchor; si_sdr + mel_distance; one worker) each in a fresh
   process and prints their peak RSS (target: no growth with the number of items).
3. Throughput: every applicable metric on the demo items through the two low-pass anchors (3.5 and 7 kHz),
   `evalkit run` with the demo config's workers, fresh output, whole wall time (process start-up, warm-up,
   exports included), against ViSQOL audio alone called directly (soxr to 48 kHz + visqol-python, mono mix, one
   process, after one warm-up call) on the same pairs. Prints the ratio (target <= 1.2, issue 30) and wall-s per
   audio-second of both. By default the model-based speech metrics (DNSMOS, speaker similarity, ASR), which came
   after this target was set, are excluded (``--exclude ''`` keeps them; ASR alone costs several ViSQOLs).

Usage: .venv/bin/python benchmarks/runner_bench.py [--items 6] [--only throughput|rerun|memory]
"""

from __future__ import annotations

import argparse
import json
import os
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


THROUGHPUT_CUTOFFS = (3500, 7000)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (pool workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reap_children(timeout_s: float = 30.0) -> None:
    import multiprocessing

    deadline = time.monotonic() + timeout_s
    while multiprocessing.active_children() and time.monotonic() < deadline:  # also joins the finished ones
        time.sleep(0.05)


def visqol_floor(files: list[Path]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, audio seconds) of ViSQOL audio alone on every (item, anchor) pair."""
    import numpy as np
    from visqol import VisqolApi

    from evalkit import audio
    from evalkit.codecs.anchors import lowpass

    api = VisqolApi()
    api.create(mode="audio")
    pairs = []
    for path in files:
        clip = audio.load(path)
        for cutoff in THROUGHPUT_CUTOFFS:
            pairs.append((clip.samples, lowpass(clip.samples, cutoff, clip.sample_rate), clip.sample_rate))

    def one(ref: np.ndarray, deg: np.ndarray, rate: int) -> float:
        r = audio.resample(ref.mean(axis=0, keepdims=True), rate, 48_000)[0].astype(np.float64)
        d = audio.resample(deg.mean(axis=0, keepdims=True), rate, 48_000)[0].astype(np.float64)
        return api.measure_from_arrays(r, d, 48_000).moslqo

    one(*pairs[0])  # warm-up: numba JIT / its on-disk cache, the SVR model
    t0, c0 = time.perf_counter(), cpu_seconds()
    for p in pairs:
        one(*p)
    return time.perf_counter() - t0, cpu_seconds() - c0, sum(p[0].shape[1] / p[2] for p in pairs)


SPEECH_MODEL_METRICS = "dnsmos_ovrl,dnsmos_sig,dnsmos_bak,dnsmos_p808,speaker_similarity,wer,cer,dwer"


def throughput(workers: int | None, metrics: str, exclude: str) -> None:
    from evalkit.runner import run_evaluation, validate_config

    raw = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    files = sorted((ROOT / "configs" / raw["dataset"]["folder"]).glob(raw["dataset"]["glob"]))
    floor_s, floor_cpu, audio_s = visqol_floor(files)
    raw["codecs"] = [{"family": "lowpass", "params": {"cutoff_hz": list(THROUGHPUT_CUTOFFS)}}]
    raw["metrics"] = metrics if metrics == "applicable" else metrics.split(",")
    raw["exclude_metrics"] = [m for m in exclude.split(",") if m]
    if workers:
        raw["workers"] = workers
    with tempfile.TemporaryDirectory() as tmp:
        raw["output"] = str(Path(tmp) / "throughput")
        config, specs = validate_config(raw, ROOT / "configs")
        t0, c0 = time.perf_counter(), cpu_seconds()
        report = run_evaluation(config, specs, fresh=True, progress=False)
        run_s = time.perf_counter() - t0
        reap_children()  # pool workers exit after the run returns; their CPU time counts once they are reaped
        run_cpu = cpu_seconds() - c0
    left_out = f" minus {exclude}" if exclude else ""
    print(f"throughput: {report.units_run} units ({audio_s:.0f} audio-s), metrics: {metrics}{left_out}, "
          f"{config.workers} workers: evalkit run {run_s:.1f} s = {run_s / audio_s:.4f} wall-s per audio-s; "
          f"ViSQOL audio alone {floor_s:.1f} s = {floor_s / audio_s:.4f} wall-s per audio-s; "
          f"ratio run / ViSQOL = {run_s / floor_s:.2f} (target <= 1.2)")
    print(f"  CPU time (less sensitive to other load): run {run_cpu / audio_s:.4f}, ViSQOL alone "
          f"{floor_cpu / audio_s:.4f} CPU-s per audio-s, ratio {run_cpu / floor_cpu:.2f}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if report.speed_table:
        print("  " + report.speed_table.replace("\n", "\n  "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--workers", type=int, help="workers for the throughput run (default: the demo config's)")
    parser.add_argument("--only", choices=["rerun", "memory", "throughput"])
    parser.add_argument("--metrics", default="applicable",
                        help="throughput: 'applicable' or a comma-separated list")
    parser.add_argument("--exclude", default=SPEECH_MODEL_METRICS,
                        help="throughput: metrics left out (comma-separated; default: the speech-model metrics)")
    args = parser.parse_args()
    if args.only in (None, "rerun"):
        rerun_ratio()
    if args.only in (None, "memory"):
        memory(args.items)
    if args.only in (None, "throughput"):
        throughput(args.workers, args.metrics, args.exclude)


if __name__ == "__main__":
    main()
