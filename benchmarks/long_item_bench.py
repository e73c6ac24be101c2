"""Long-item benchmark: peak memory of `evalkit run` on one long mono 44.1 kHz item against its length.

For each length (minutes) a fresh process writes one synthetic item (a tone plus noise, float32 WAV, written in
blocks) and runs `evalkit run` on it with one worker (a child process). While it runs, this script samples the
memory of the whole process tree (the run and its worker processes) every 0.25 s from ``/proc``:

* ``tree RSS``: the sum of the processes' resident sizes (pages shared between them counted in each);
* ``tree PSS``: the sum of their proportional sizes (shared pages split between the sharers: the tree's real
  footprint);
* ``max proc RSS``: the largest single process's high-water mark (``VmHWM`` in ``/proc/PID/status``: exact for
  the process, read at every sample; growth after a process's last sample is missed) and which process it was
  (``run``: the coordinator, ``worker``: the child that codes and scores).

It prints them with the item's float32 size, the wall time and, against the shortest length, how much each
figure grew for how much longer an item (``growth``: peak ratio / length ratio; sublinear growth is < 1).
Long items are coded in chunks (:mod:`evalkit.codecs.chunking`) and scored in segments
(:mod:`evalkit.metrics.segments`), so memory should hardly grow with the length.

By default the codecs are those the issue names for the demo (``qincodec?bitrate_kbps=8``, ``opus?bitrate_kbps=12``,
``dac-44khz`` and the EnCodec models at random weights: no pretrained weights are needed) and the metrics are
``applicable``; ``--each`` runs every codec in a run of its own (its own peak), ``--timeout`` stops a run that takes
too long and prints the peaks it reached.

A pretrained model is loaded from its weights file, not built by its constructor. So each ``weights=random`` spec
first gets its random weights written to a file in the official layout (DAC's ``{state_dict, metadata}``,
EnCodec's plain state dict), in a process of its own, and the run loads that file (``weights=PATH``): the path of
a user's pretrained weights. ``--random-weights`` measures the constructor instead (its ``(g, v)`` and weight held
together while it builds).

Usage: .venv/bin/python benchmarks/long_item_bench.py [--minutes 1 10] [--hour] [--each] [--timeout 3600]
       [--codecs "qincodec?bitrate_kbps=8" "opus?bitrate_kbps=12"] [--metrics si_sdr mel_distance stoi]
       [--random-weights]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evalkit.runner.layout import LOG_NAME

DEFAULT_CODECS = ["qincodec?bitrate_kbps=8", "opus?bitrate_kbps=12", "dac-44khz?n_codebooks=9&weights=random",
                  "encodec-24khz?bandwidth=6&weights=random", "encodec-48khz?bandwidth=6&weights=random"]
SAMPLE_S = 0.25
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

CHILD = """
import json, sys, time
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
print("START", flush=True)
t0 = time.perf_counter()
report = run_evaluation(config, specs, progress=False)
print(json.dumps({"run_s": time.perf_counter() - t0, "units": report.units_run, "failed": report.units_failed}))
"""


SAVE_WEIGHTS = """
import sys
from evalkit.codecs import build_codec
spec, path = sys.argv[1], sys.argv[2]
model = build_codec(spec, device="cpu").build_loaded_model()  # as published: weight norms not folded
if spec.startswith("dac-"):
    model.save(path, package=False)  # the dac library's own layout: state_dict + metadata
else:
    import torch
    torch.save(model.state_dict(), path)
"""


def with_weights_files(codecs: list[str], folder: Path) -> list[str]:
    """``codecs`` with each ``weights=random`` spec's weights written to a file in ``folder`` (a process of its
    own each) and loaded from it (``weights=PATH``)."""
    out = []
    for spec in codecs:
        if "weights=random" not in spec:
            out.append(spec)
            continue
        path = folder / (spec.replace("?", "_").replace("&", "_").replace("=", "-") + ".pth")
        subprocess.run([sys.executable, "-c", SAVE_WEIGHTS, spec, str(path)], check=True, capture_output=True)
        out.append(spec.replace("weights=random", f"weights={path}"))
    return out


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _rss_pss_kb(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            fields = dict(line.split()[:2] for line in fh if line.split()[0] in ("Rss:", "Pss:"))
        return int(fields["Rss:"]), int(fields["Pss:"])
    except (OSError, KeyError, ValueError):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                rss = int(fh.read().split()[1]) * PAGE_KB
            return rss, rss
        except OSError:
            return 0, 0


def _hwm_kb(pid: int) -> tuple[int, str]:
    """The process's peak resident size (kB) and its role, from ``/proc``."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            hwm = next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return 0, ""
    role = "worker" if "spawn_main" in cmd else "helper" if "resource_tracker" in cmd else "run"
    return hwm, role


def sample(pid: int, peaks: dict[int, tuple[int, str]], timeline=None, t: float = 0.0) -> tuple[int, int]:
    """(RSS, PSS) in kB summed over the tree under ``pid``; ``peaks`` keeps each process's high-water mark;
    ``timeline`` (a text file) gets a line per process: seconds, role, pid, RSS MiB."""
    pids = tree(pid)
    sizes = [_rss_pss_kb(p) for p in pids]
    for p, size in zip(pids, sizes, strict=True):
        hwm, role = _hwm_kb(p)
        if hwm > peaks.get(p, (0, ""))[0]:
            peaks[p] = (hwm, role)
        if timeline is not None:
            timeline.write(f"{t:.2f}\t{role}\t{p}\t{size[0] / 1024:.0f}\n")
    return sum(s[0] for s in sizes), sum(s[1] for s in sizes)


def measure(minutes: float, codecs: list, metrics, timeout_s: float | None, timeline: Path | None = None) -> dict:
    """Run one item of ``minutes`` in a fresh process tree; peaks from the moment the item is written.
    ``timeline``: write every sample there (``.tsv``) and keep the run's log beside it (``.log``)."""
    with tempfile.TemporaryDirectory() as tmp, \
            (open(timeline.with_suffix(".tsv"), "w") if timeline else contextlib.nullcontext()) as samples:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(minutes), tmp, json.dumps(codecs),
                                 json.dumps(metrics)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            started = proc.stdout.readline().strip() == "START"
            t0 = time.monotonic()
            peak_rss = peak_pss = 0
            peaks: dict[int, tuple[int, str]] = {}
            timed_out = False
            while proc.poll() is None:
                rss, pss = sample(proc.pid, peaks, samples, time.monotonic() - t0)
                peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
                if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    timed_out = True
                    break
                time.sleep(SAMPLE_S)
        finally:  # stopped by --timeout, Ctrl-C or an error here: the run's whole tree goes too
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        wall = time.monotonic() - t0
        if timeline is not None:
            with contextlib.suppress(OSError):
                shutil.copyfile(Path(tmp) / "run" / LOG_NAME, timeline.with_suffix(".log"))
    largest = max(peaks.values(), default=(0, "?"))
    row = {"minutes": minutes, "float32_mb": minutes * 60 * 44_100 * 4 / 2**20, "tree_rss_mb": peak_rss / 1024,
           "tree_pss_mb": peak_pss / 1024, "max_proc_rss_mb": largest[0] / 1024, "max_proc": largest[1],
           "by_role_mb": {role: max(h for h, r in peaks.values() if r == role) / 1024
                          for role in {r for _, r in peaks.values()}}, "wall_s": wall}
    if timed_out:
        return {**row, "error": f"timed out after {timeout_s:g} s (peaks so far)"}
    if not started or proc.returncode != 0:
        return {**row, "error": f"exit {proc.returncode}: {err.strip().splitlines()[-1:]}"}
    return {**row, **json.loads(out.strip().splitlines()[-1])}


def print_rows(label: str, rows: list[dict]) -> None:
    print(f"\n{label}")
    print(f"{'minutes':>8} {'float32 MiB':>10} {'tree RSS MiB':>12} {'tree PSS MiB':>12} {'max proc MiB':>12} "
          f"{'growth RSS':>11} {'growth PSS':>11} {'run s':>8}  units")
    base = next((r for r in rows if "error" not in r), None)
    for r in rows:
        growth = ["", ""]
        if base is not None and r is not base and r["minutes"] > base["minutes"]:
            length = r["minutes"] / base["minutes"]
            growth = [f"{r[k] / base[k] / length:.3f}" for k in ("tree_rss_mb", "tree_pss_mb")]
        tail = r.get("error") or f"{r['units']} run, {r['failed']} failed"
        tail += "; peaks: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in sorted(r.get("by_role_mb", {}).items()))
        print(f"{r['minutes']:>8g} {r['float32_mb']:>10.1f} {r['tree_rss_mb']:>12.0f} {r['tree_pss_mb']:>12.0f} "
              f"{r['max_proc_rss_mb']:>12.0f} {growth[0]:>11} {growth[1]:>11} {r['wall_s']:>8.0f}  {tail}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--hour", action="store_true", help="also run a 60-minute item")
    parser.add_argument("--codecs", nargs="+", default=DEFAULT_CODECS, help="codec specs")
    parser.add_argument("--metrics", nargs="+", help="metric names (default: applicable)")
    parser.add_argument("--each", action="store_true", help="one run per codec (else one run with them all)")
    parser.add_argument("--timeout", type=float, help="seconds after which a run is stopped (its peaks printed)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--timeline", type=Path, help="folder for each run's memory samples (.tsv: seconds, "
                        "role, pid, RSS MiB) and log (.log), to see which phase peaks")
    parser.add_argument("--random-weights", action="store_true",
                        help="build weights=random models with their constructor, not load them from a file")
    args = parser.parse_args()
    metrics = args.metrics or "applicable"
    lengths = args.minutes + [60.0] * args.hour
    groups = [[c] for c in args.codecs] if args.each else [args.codecs]
    results = {}
    with tempfile.TemporaryDirectory() as weights:
        for codecs in groups:
            label = " + ".join(codecs) + f" | metrics: {metrics if isinstance(metrics, str) else ', '.join(metrics)}"
            if not args.random_weights:
                label += " | random weights loaded from a file"
                codecs = with_weights_files(codecs, Path(weights))
            rows = []
            for minutes in lengths:
                timeline = None
                if args.timeline:
                    args.timeline.mkdir(parents=True, exist_ok=True)
                    timeline = args.timeline / f"{len(results)}-{minutes:g}min"
                rows.append(measure(minutes, [{"spec": c} for c in codecs], metrics, args.timeout, timeline))
                print(f"  {label}: {minutes:g} min done", file=sys.stderr, flush=True)
            print_rows(label, rows)
            results[label] = rows
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
