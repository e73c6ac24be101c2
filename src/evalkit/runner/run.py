"""``evalkit run``: plan the items × codec variants, skip finished work, run the rest, write the store."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from evalkit.codecs import CodecSpec
from evalkit.metrics import Metric, MetricKind, applicable_metrics, get_metrics
from evalkit.runner.config import RunConfig
from evalkit.runner.executors import run_dask, run_local
from evalkit.runner.plan import REFERENCE, Item, Variant, list_items, plan_variant, result_key, unit_key
from evalkit.runner.store import Store, UnitRow
from evalkit.runner.work import ItemTask, UnitJob, UnitOutcome, nan_rows

log = logging.getLogger(__name__)
STORE_NAME = "results.sqlite"


@dataclass
class RunReport:
    output: Path
    store: Path
    units_total: int = 0
    units_run: int = 0
    units_rescored: int = 0
    units_failed: int = 0
    variants_skipped: list[tuple[str, str]] = field(default_factory=list)
    exports: dict[str, Path] = field(default_factory=dict)
    summary_table: str = ""
    speed_table: str = ""
    wall_s: float = 0.0
    warmup_s: dict[str, float] = field(default_factory=dict)  # metric -> seconds, summed over workers


def _metrics_for(config: RunConfig, item: Item) -> list[Metric]:
    """Listed metrics run on every item; ``applicable`` ones by rate and by the item's manifest category."""
    if config.metrics != "applicable":
        return get_metrics(config.metrics)
    try:
        rate = sf.info(str(item.path)).samplerate
    except (sf.LibsndfileError, RuntimeError, OSError):
        rate = 44_100  # unreadable: the unit fails with its reason for every metric a 44.1 kHz file would get
    return applicable_metrics(rate, category=item.category)


def _plan(config: RunConfig, variants: list[Variant], store: Store, report: RunReport,
          keys: list[str]) -> list[ItemTask]:
    tasks = []
    for item in list_items(config.dataset):
        metrics = _metrics_for(config, item)
        jobs = []
        # no-reference metrics are also scored once per item on the reference (pseudo-variant REFERENCE)
        no_reference = [m for m in metrics if m.info.kind is MetricKind.NO_REFERENCE]
        for variant, variant_metrics in [(REFERENCE, no_reference)] * bool(no_reference) + \
                [(v, metrics) for v in variants]:
            key = unit_key(item, variant)
            keys.append(key)
            report.units_total += variant is not REFERENCE
            if variant.skipped:
                existing = store.unit(key)
                if existing is None or existing["reason"] != variant.skipped:
                    store.write_unit(UnitRow(key, item.item_id, str(item.path), item.category, item.content_hash,
                                             str(variant.spec), variant.spec.family, "skipped", variant.skipped), [])
                continue
            existing = store.unit(key)
            done = store.done_results(key) if existing else set()
            todo = tuple((rk, m.info.name) for m in variant_metrics
                         if (rk := result_key(key, m, item.text)) not in done)
            if existing and existing["status"] in ("ok", "failed") and not todo:
                continue
            if existing and existing["status"] == "failed":  # bad audio stays bad: record NaN rows, run nothing
                job = UnitJob(key, str(variant.spec), todo)
                store.write_unit(UnitRow(**{k: existing[k] for k in UnitRow.__dataclass_fields__}),
                                 nan_rows(item, job, existing["reason"]))
                continue
            cached = existing["decoded_path"] if existing and existing["status"] == "ok" else None
            if cached and not Path(cached).is_file():
                cached = None
            jobs.append(UnitJob(key, str(variant.spec), todo, cached))
        if jobs:
            tasks.append(ItemTask(item, tuple(jobs), config.dataset.segment_seconds, config.channel_policy,
                                  config.device, config.max_delay_s))
    return tasks


def _atomic_write(path: Path, writer) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer(tmp)
    os.replace(tmp, path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a handle, so numpy does not append ".npy" to the temporary name
        np.save(fh, array)


class _Writer:
    """Coordinator side: cache files first (atomic renames), then one store transaction per unit."""

    def __init__(self, store: Store, output: Path, report: RunReport, bar: tqdm):
        self.store, self.report, self.bar = store, report, bar
        self.decoded_dir = output / "cache" / "decoded"
        self.codes_dir = output / "cache" / "codes"
        self.decoded_dir.mkdir(parents=True, exist_ok=True)
        self.codes_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, outcomes: list[UnitOutcome]) -> None:
        for outcome in outcomes:
            unit = outcome.unit
            codec_unit = unit.codec_spec != str(REFERENCE.spec)  # not the reference pseudo-unit
            updates = {}
            if outcome.decoded is not None:
                path = self.decoded_dir / f"{unit.unit_key}.wav"
                _atomic_write(path, lambda p, o=outcome, u=unit: sf.write(
                    str(p), o.decoded.T, u.input_rate, subtype="FLOAT", format="WAV"))
                updates["decoded_path"] = str(path)
            if outcome.codes is not None:
                path = self.codes_dir / f"{unit.unit_key}.npy"
                _atomic_write(path, lambda p, o=outcome: _save_npy(p, o.codes))
                updates["codes_path"] = str(path)
            if outcome.rescored:
                existing = self.store.unit(unit.unit_key)
                unit = UnitRow(**{k: existing[k] for k in UnitRow.__dataclass_fields__})
                self.report.units_rescored += 1
            else:
                unit = UnitRow(**{**unit.__dict__, **updates})
                self.report.units_run += codec_unit
            self.store.write_unit(unit, outcome.results, outcome.variant_info)
            for metric, seconds in outcome.warmup_s.items():
                self.report.warmup_s[metric] = self.report.warmup_s.get(metric, 0.0) + seconds
                log.info("warm-up of %s in a worker: %.2f s (not charged to %s)", metric, seconds, unit.item_id)
            if unit.status == "failed" and codec_unit:
                self.report.units_failed += 1
                log.warning("%s x %s failed: %s", unit.item_id, unit.codec_spec, unit.reason)
            self.bar.update(1)


def run_evaluation(config: RunConfig, specs: list[CodecSpec], *, executor: str = "local",
                   scheduler: str | None = None, fresh: bool = False, progress: bool = True) -> RunReport:
    """Evaluate the dataset through every codec variant; resumable and idempotent.

    Returns a report with counts, skipped variants, export paths and the printed tables.
    """
    t0 = time.perf_counter()
    output = Path(config.output)
    if fresh:
        (output / STORE_NAME).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            (output / f"{STORE_NAME}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(output / "cache", ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)
    report = RunReport(output, output / STORE_NAME)
    variants = [plan_variant(s) for s in specs]
    report.variants_skipped = [(str(v.spec), v.skipped) for v in variants if v.skipped]
    for spec, reason in report.variants_skipped:
        log.info("skipping %s: %s", spec, reason)
    keys: list[str] = []
    with Store(report.store) as store:
        tasks = _plan(config, variants, store, report, keys)
        pending_units = sum(len(t.jobs) for t in tasks)
        with tqdm(total=pending_units, desc="units", unit="unit", disable=not progress, dynamic_ncols=True) as bar:
            writer = _Writer(store, output, report, bar)
            if executor == "dask":
                run_dask(iter(tasks), config.workers, writer, scheduler)
            else:
                run_local(iter(tasks), config.workers, writer, log_path=str(output / "run.log"))
        from evalkit.runner import exports  # pandas: not imported by worker processes, which import this module

        report.exports, report.summary_table, report.speed_table = exports.write_all(
            store, keys, output, seed=config.seed)
    if report.warmup_s and report.speed_table:
        report.speed_table += ("\nwarm-up, once per worker and not in the factors above (s): "
                               + ", ".join(f"{m} {s:.2f}" for m, s in sorted(report.warmup_s.items())))
    report.wall_s = time.perf_counter() - t0
    return report

