"""Many-items benchmark: evalkit's own overhead per unit against the metric's cost, and planning 100,000 units.

1. ``run``: N one-second 16 kHz items × 3 low-pass variants × SI-SDR, `evalkit run` with one worker into a fresh
   folder. Prints the wall time split into planning, running units (codec + metric, as the store records them:
   ``process_s`` and each value's ``seconds``), start-up, exports and the rest, and evalkit's overhead (everything
   but the codec and the metric) as a share of the total (target ≤ 20 %). Store and cache writes run in the
   coordinator's writer thread while units go on; their time is printed apart. On Linux it also prints the
   worker's CPU time besides the codec and the metric, the time it was ready to run but waited for a core (while
   the coordinator's threads ran), and the coordinator's CPU time.
2. ``plan``: plans a synthetic dataset of ``--plan-units`` units (items that exist only as records, 3 variants,
   SI-SDR; no audio read, no metric run) against an empty store, then again against a store holding every unit
   as done (resume), and prints both times (target < 30 s each).

``--profile FILE`` writes a cProfile of part 1 (read it with ``python -m pstats FILE``).

Usage: .venv/bin/python benchmarks/many_items_bench.py [--items 2000] [--plan-units 100000] [--only run|plan]
"""

from __future__ import annotations

import argparse
import cProfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

RATE = 16_000
SPECS = ["lowpass?cutoff_hz=3500", "lowpass?cutoff_hz=5000", "lowpass?cutoff_hz=7000"]
STARTUP = "start-up (to the first unit's result)"


@contextmanager
def timed(owner, name: str, totals: dict[str, float], key: str):
    """Wrap ``owner.name`` so that its calls add their wall time to ``totals[key]``."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def process_times(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, seconds spent ready to run but waiting for a core) of process ``pid`` so far, from Linux's
    /proc; ``None`` elsewhere."""
    try:
        with open(f"/proc/{pid}/schedstat") as fh:
            on_cpu_ns, waiting_ns, _ = (int(v) for v in fh.read().split())
    except (OSError, ValueError):
        return None
    return on_cpu_ns / 1e9, waiting_ns / 1e9


@contextmanager
def worker_times(totals: dict[str, float]):
    """Add the pool workers' CPU and run-queue seconds during ``LocalPool.run`` to ``totals``."""
    from evalkit.runner import executors

    original = executors.LocalPool.run

    def run(self, *args, **kwargs):
        before = {w.process.pid: process_times(w.process.pid) for w in self.workers.values()}
        try:
            return original(self, *args, **kwargs)
        finally:
            for pid, start in before.items():
                end = process_times(pid)
                if start is not None and end is not None:
                    totals["cpu"] = totals.get("cpu", 0.0) + end[0] - start[0]
                    totals["waiting"] = totals.get("waiting", 0.0) + end[1] - start[1]

    executors.LocalPool.run = run
    try:
        yield
    finally:
        executors.LocalPool.run = original


def write_items(folder: Path, count: int) -> None:
    # numpy is imported here, not at the top: the worker process re-imports this script before it sets its
    # thread counts, which libraries read when they are imported (as `evalkit run` does)
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    for i in range(count):
        x = 0.3 * np.sin(2 * np.pi * (200 + i % 500) * t) + 0.05 * rng.standard_normal(RATE)
        sf.write(folder / f"x{i:05d}.wav", x.astype(np.float32), RATE, subtype="FLOAT")


def run_bench(items: int, profile: str | None) -> None:
    import evalkit.runner.exports as exports
    from evalkit.runner import run as run_module
    from evalkit.runner import run_evaluation, validate_config
    from evalkit.runner.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_items(data, items)
        raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "codecs": [{"spec": s} for s in SPECS],
               "metrics": ["si_sdr"], "output": str(Path(tmp) / "run"), "workers": 1}
        config, specs = validate_config(raw, Path(tmp))
        totals: dict[str, float] = {}
        profiler = cProfile.Profile() if profile else None
        overlapped: dict[str, float] = {}  # in the writer thread, while units go on: not part of the wall sum
        first_unit: list[float] = []
        real_call = run_module._Writer.__call__

        last_unit: list[float] = [0.0]

        def call(self, outcomes):
            if not first_unit:
                first_unit.append(time.perf_counter())
            last_unit[0] = time.perf_counter()
            return real_call(self, outcomes)

        workers: dict[str, float] = {}
        cpu_before = time.process_time()
        with timed(run_module, "_plan", totals, "planning"), worker_times(workers), \
                timed(run_module._Writer, "_write", overlapped, "store + cache writes"), \
                timed(exports, "write_all", totals, "exports"), \
                timed(run_module, "_make_durable", overlapped, "(of the writes) disk sync of cache files"):
            run_module._Writer.__call__ = call
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            try:
                report = run_evaluation(config, specs, progress=False)
            finally:
                run_module._Writer.__call__ = real_call
            if profiler:
                profiler.disable()
            wall = time.perf_counter() - t0
            coordinator_cpu = time.process_time() - cpu_before
        totals[STARTUP] = first_unit[0] - t0 - totals["planning"]
        steady_start, steady_end = first_unit[0], last_unit[0]
        if profiler:
            profiler.dump_stats(profile)
        with Store(report.store) as store:
            metric_s = store.query("SELECT SUM(seconds) AS s FROM results")[0]["s"] or 0.0
            codec_s = store.query("SELECT SUM(process_s) AS s FROM units")[0]["s"] or 0.0
        units = report.units_run
    work = metric_s + codec_s
    overhead = wall - work
    print(f"{items} items × {len(SPECS)} variants × si_sdr: {units} units, wall {wall:.2f} s "
          f"({1000 * wall / units:.2f} ms/unit)")
    rows = [("metric (SI-SDR: preparation + value)", metric_s), ("codec (low-pass process)", codec_s),
            *sorted(totals.items()),
            ("everything else (load, hand-over, loop)", wall - work - sum(totals.values()))]
    for name, seconds in rows:
        print(f"  {name:<40} {seconds:8.2f} s  {1000 * seconds / units:7.3f} ms/unit  {100 * seconds / wall:5.1f} %")
    print("  in the coordinator's writer thread, overlapping the units (not in the sum):")
    for name, seconds in sorted(overlapped.items()):
        print(f"  {name:<40} {seconds:8.2f} s  {1000 * seconds / units:7.3f} ms/unit")
    print(f"evalkit overhead (wall - codec - metric): {overhead:.2f} s = {100 * overhead / wall:.1f} % of the total "
          f"(target <= 20 %); overhead / metric cost = {overhead / metric_s:.2f}")
    # the units between the first result and the last, without the run's fixed costs (start-up, exports), which a
    # larger test set spreads thinner: the overhead each further unit adds
    steady = steady_end - steady_start
    steady_work = work * (units - 1) / units
    per_unit = 1000 * (steady - steady_work) / (units - 1)
    print(f"per further unit (first result to last, {steady:.2f} s): overhead {per_unit:.3f} ms/unit "
          f"= {100 * (1 - steady_work / steady):.1f} % of that span; fixed: start-up "
          f"{totals[STARTUP]:.2f} s, exports {totals['exports']:.2f} s, planning {totals['planning']:.2f} s")
    if workers:  # where the worker's share of the overhead goes (Linux)
        print(f"worker: {workers['cpu'] - work:.2f} s CPU besides codec and metric "
              f"({1000 * (workers['cpu'] - work) / units:.3f} ms/unit), {workers['waiting']:.2f} s ready but "
              f"waiting for a core ({1000 * workers['waiting'] / units:.3f} ms/unit); coordinator (all its "
              f"threads): {coordinator_cpu:.2f} s CPU")


def plan_bench(units: int) -> None:
    import numpy as np
    import soundfile as sf

    from evalkit.codecs import parse_spec
    from evalkit.metrics import get_metric
    from evalkit.runner import run as run_module
    from evalkit.runner import validate_config
    from evalkit.runner.plan import Item, plan_variant
    from evalkit.runner.store import Store, UnitStatus

    count = -(-units // len(SPECS))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        sf.write(data / "placeholder.wav", np.zeros(RATE, np.float32), RATE)  # the config needs one match
        raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "codecs": [{"spec": s} for s in SPECS],
               "metrics": ["si_sdr"], "output": str(Path(tmp) / "run"), "workers": 1}
        config, specs = validate_config(raw, Path(tmp))
        items = [Item(f"x{i:06d}.wav", data / f"x{i:06d}.wav", f"{i:064x}", "", RATE, None, 1.0, 1)
                 for i in range(count)]
        variants = [plan_variant(parse_spec(s)) for s in SPECS]
        output = Path(config.output)
        decoded = output / "cache" / "decoded"
        decoded.mkdir(parents=True)
        with Store(output / "store.sqlite") as store:
            report = run_module.RunReport(output, output / "store.sqlite")
            t0 = time.perf_counter()
            plan = run_module._plan(config, items, variants, store, report)
            store.set_current_plan(plan.units)
            fresh_s = time.perf_counter() - t0
            planned = sum(len(t.jobs) for t in plan.tasks)
            # every unit done: one shared one-second decoded file (cache checks read its header)
            sf.write(decoded / "shared.wav", np.zeros(RATE, np.float32) + 0.1, RATE, subtype="FLOAT")
            metric = get_metric("si_sdr").info
            t1 = time.perf_counter()
            with store.db:
                for task in plan.tasks:
                    item = task.item
                    for job in task.jobs:
                        store.db.execute(
                            "INSERT INTO units (unit_key, item_id, codec_spec, status, input_rate, input_seconds, "
                            "decoded_path) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (job.unit_key, item.item_id, job.spec, str(UnitStatus.OK), RATE, 1.0,
                             "cache/decoded/shared.wav"))
                        for key, name in job.metrics:
                            store.db.execute("INSERT INTO results (result_key, unit_key, item_id, codec_spec, "
                                             "metric, value, unit) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                             (key, job.unit_key, item.item_id, job.spec, name, 1.0, metric.unit))
            fill_s = time.perf_counter() - t1
            t2 = time.perf_counter()
            resumed = run_module._plan(config, items, variants, store, report)
            store.set_current_plan(resumed.units)
            resume_s = time.perf_counter() - t2
    print(f"plan of {len(items)} items × {len(SPECS)} variants = {planned} units (si_sdr), no audio, no metric:")
    print(f"  fresh store:  {fresh_s:6.2f} s  ({1e6 * fresh_s / planned:.1f} µs/unit; target < 30 s)")
    print(f"  resume (all {planned} done): {resume_s:6.2f} s  ({1e6 * resume_s / planned:.1f} µs/unit; "
          f"{len(resumed.tasks)} tasks left; target < 30 s)   [filling the store took {fill_s:.1f} s]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--plan-units", type=int, default=100_000)
    parser.add_argument("--only", choices=["run", "plan"])
    parser.add_argument("--profile", help="write a cProfile of the run here")
    args = parser.parse_args()
    if args.only != "plan":
        run_bench(args.items, args.profile)
    if args.only != "run":
        plan_bench(args.plan_units)


if __name__ == "__main__":
    main()
