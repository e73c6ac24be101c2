"""``evalkit run``: plan the items × codec variants, skip finished work, run the rest, write the store.

One run at a time per output folder (a lock file holding the owner's pid). Cache files are written under
temporary names, fsynced and renamed into place before the store transaction that references them commits.
Ctrl-C stops the workers and raises :class:`RunInterrupted`; every unit written so far is kept.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import logging
import os
import queue
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from evalkit import audio as audio_lib
from evalkit.codecs import CodecSpec, build_codec
from evalkit.codecs.records import describe
from evalkit.metrics import Metric, MetricKind, applicable_metrics, get_metrics
from evalkit.runner.config import ConfigError, RunConfig, decode_settings, score_settings
from evalkit.runner.decoded import is_decoded_spec
from evalkit.runner.executors import (
    DaskSchedulerLost,
    LocalPool,
    dask_client,
    local_pool,
    run_dask,
    run_local,
)
from evalkit.runner.layout import (
    CODES_CACHE,
    DECODED_CACHE,
    LISTING_CACHE,
    LOCK_NAME,
    LOG_NAME,
    SLURM_LOGS,
    STORE_NAME,
    temporary_path,
)
from evalkit.runner.listing_cache import ListingCache
from evalkit.runner.outcome import Plan, RunReport
from evalkit.runner.output import check_output, discard_run_files
from evalkit.runner.plan import (
    REFERENCE,
    Item,
    Variant,
    chunking_for,
    list_items,
    plan_variant,
    result_key,
    scored_segment_s,
    unit_key,
)
from evalkit.runner.provenance import run_provenance, write_provenance
from evalkit.runner.slurm import slurm_client
from evalkit.runner.store import (
    Store,
    UnitRow,
    UnitStatus,
    is_disk_full,
    resolve_stored,
    store_failure,
    stored_path,
    write_failure,
)
from evalkit.runner.work import ItemTask, UnitJob, UnitOutcome, nan_rows, prepare_worker
from evalkit.worker_setup import available_cores

log = logging.getLogger(__name__)


class RunInterrupted(Exception):
    """Ctrl-C during a run; ``units`` were written before it and are kept."""

    def __init__(self, units: int):
        self.units = units
        super().__init__(f"interrupted after {units} units; rerun to resume")


_HELD_LOCKS: dict[Path, int] = {}  # output folder -> nesting depth, for this process


@contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold ``output`` for this process (re-entrant); creates the folder.

    Raises:
        ConfigError: the folder cannot be created or written, or another process holds it (named by pid).
    """
    output = Path(output)
    key = output.resolve()
    if key in _HELD_LOCKS:
        _HELD_LOCKS[key] += 1
        try:
            yield
        finally:
            _HELD_LOCKS[key] -= 1
        return
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd = os.open(output / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _unwritable(output, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown process"
        os.close(fd)
        raise ConfigError(str(output), [f"output folder is in use by another evalkit run ({holder}); wait for it "
                                        f"or choose another output folder"]) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise _unwritable(output, exc) from None
    _HELD_LOCKS[key] = 1
    try:
        yield
    finally:
        del _HELD_LOCKS[key]
        os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock


def _unwritable(output: Path, exc: OSError) -> Exception:
    """The one-line error for an output folder that cannot be created or written: full, or not writable."""
    if is_disk_full(exc):
        return write_failure(output / LOCK_NAME, exc)
    return ConfigError(str(output), [f"output folder is not writable ({exc.strerror or exc})"])


def _metrics_for(config: RunConfig, item: Item) -> list[Metric]:
    """Listed metrics run on every item; ``applicable`` ones by rate and by the item's manifest category;
    ``exclude_metrics`` are left out of either."""
    if config.metrics != "applicable":
        chosen = get_metrics(config.metrics)
    else:  # unreadable: the unit fails with its reason for every metric a 44.1 kHz file would get
        chosen = applicable_metrics(item.sample_rate or 44_100, category=item.category)
    return [m for m in chosen if m.info.name not in config.exclude_metrics]


def _metrics_in_view(config: RunConfig) -> tuple[str, ...]:
    """The metrics a run's items may get, known before its items are: the listed ones, or for ``applicable`` those
    a 44.1 kHz item gets (``exclude_metrics`` left out)."""
    names = config.metrics if config.metrics != "applicable" else [m.info.name for m in applicable_metrics(44_100)]
    return tuple(n for n in names if n not in config.exclude_metrics)


def nyquist_problems(items: list[Item], variants: list[Variant]) -> list[str]:
    """Low-pass anchors whose cut-off is at or above the Nyquist frequency of some item."""
    problems = []
    for variant in variants:
        cutoff = describe(variant.spec).anchor_cutoff_hz
        if cutoff is None:
            continue
        bad = [i for i in items if i.sample_rate is not None and cutoff >= i.sample_rate / 2]
        if bad:
            low = min(bad, key=lambda i: i.sample_rate)
            problems.append(f"{variant.spec}: cut-off {cutoff:g} Hz is at or above the Nyquist frequency of "
                            f"{len(bad)} item(s), e.g. {low.item_id} ({low.sample_rate} Hz: "
                            f"{low.sample_rate / 2:g} Hz)")
    return problems


def codec_input_problems(items: list[Item], variants: list[Variant], channel_policy: str) -> list[str]:
    """Variants whose parameters their codec library refuses, or would silently change, for the sample rate and
    channel count of some items (e.g. an Opus bitrate above 256 kbps per channel on mono items)."""
    problems = []
    for variant in variants:
        if variant.skipped or is_decoded_spec(variant.spec):
            continue
        codec = build_codec(variant.spec)  # constructor only: no model is loaded
        reasons: dict[tuple[int, int], str | None] = {}
        bad: dict[str, list[Item]] = {}
        for item in items:
            if item.sample_rate is None or item.channels is None:  # unreadable: a failed unit
                continue
            shape = (item.sample_rate, item.channels)
            if shape not in reasons:
                reasons[shape] = codec.input_problem(*shape, channel_policy)
            if reasons[shape] is not None:
                bad.setdefault(reasons[shape], []).append(item)
        for reason, hit in bad.items():
            problems.append(f"{variant.spec}: {reason}, for {len(hit)} item(s), e.g. {hit[0].item_id}")
    return problems


def local_workers(requested: int) -> int:
    """``requested`` worker processes, capped at the cores this process may use (one note when capped)."""
    cores = available_cores()
    if requested > cores:
        log.warning("workers: %d requested, but this process may use %d CPU core(s); running %d", requested, cores,
                    cores)
        return cores
    return requested


WAV_HEADER_MIN = 44  # bytes before the samples of a WAV file


def cache_usable(unit: dict, run_dir: Path) -> bool:
    """Whether an ``ok`` unit's cached decoded audio (and codes) are complete readable files."""
    decoded = resolve_stored(unit.get("decoded_path"), run_dir)
    codes = resolve_stored(unit.get("codes_path"), run_dir)
    if not decoded:
        return False
    try:
        expected = round((unit["input_seconds"] or 0) * (unit["input_rate"] or 0))
        # evalkit writes float32 WAV: a file with room for every sample of every input channel is taken as
        # complete without opening it (renames are atomic; a worker that rescores it reads and checks it again);
        # any other (a mono output of a stereo item, a truncated file) has its header read
        size = decoded.stat().st_size
        whole = WAV_HEADER_MIN + 4 * expected * (unit["input_channels"] or 1)
        if expected == 0 or size < whole and sf.info(str(decoded)).frames != expected:
            return False
        if codes:
            np.load(codes, mmap_mode="r", allow_pickle=False)  # header and size checked
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError):
        return False
    return True


def _plan(config: RunConfig, items: list[Item], variants: list[Variant], store: Store, report: RunReport) -> Plan:
    output = Path(config.output)
    # a local run's workers share this machine: they write a long unit's decoded audio into the cache themselves
    worker_files = str(output.joinpath(*DECODED_CACHE)) if config.executor.kind == "local" else None
    plan = Plan(variants={str(v.spec): v for v in (REFERENCE, *variants)})
    plan.records = {spec: describe(spec, config.channel_policy) for spec in plan.variants}
    store.write_records((spec, r.to_json(), r.version) for spec, r in plan.records.items())
    decode, score = decode_settings(config), score_settings(config)
    stored_units, done_results = store.units(), store.all_done_results()  # two queries, not two per unit
    for item in items:
        metrics = _metrics_for(config, item)
        segmented = scored_segment_s(item, decode)
        jobs = []
        # no-reference metrics are also scored once per item on the reference (pseudo-variant REFERENCE)
        no_reference = [m for m in metrics if m.info.kind is MetricKind.NO_REFERENCE]
        for variant, variant_metrics in [(REFERENCE, no_reference)] * bool(no_reference) + \
                [(v, metrics) for v in variants]:
            chunked = chunking_for(item, variant, decode)
            key = unit_key(item, variant, decode, chunked)
            plan.units[key] = item.category
            report.units_total += variant is not REFERENCE
            spec = str(variant.spec)
            existing = stored_units.get(key)
            if variant.skipped:
                if existing is None or existing["reason"] != variant.skipped:
                    store.write_unit(UnitRow(key, item.item_id, str(item.path), item.category, item.content_hash,
                                             spec, variant.spec.family, UnitStatus.SKIPPED, variant.skipped), [])
                continue
            keyed = [(result_key(key, m, score, item.text, segmented), m.info.name) for m in variant_metrics]
            plan.results += [rk for rk, _ in keyed]
            status = existing["status"] if existing else None
            if status == UnitStatus.OK and variant is not REFERENCE and not cache_usable(existing, output):
                log.warning("recomputing %s x %s: cached files missing or incomplete", item.item_id, spec)
                status = None
            done = done_results.get(key, set()) if status in (UnitStatus.OK, UnitStatus.FAILED) else set()
            todo = tuple(k for k in keyed if k[0] not in done)
            if not todo:
                continue
            if status == UnitStatus.FAILED:  # bad audio stays bad: record NaN rows, run nothing
                job = UnitJob(key, spec, todo)
                store.write_unit(UnitRow(**{k: existing[k] for k in UnitRow.__dataclass_fields__}),
                                 nan_rows(item, job, existing["reason"], score))
                continue
            cached = str(resolve_stored(existing["decoded_path"], output)) if status == UnitStatus.OK else None
            jobs.append(UnitJob(key, spec, todo, cached, chunked=chunked is not None))
        if jobs:
            plan.tasks.append(ItemTask(item, tuple(jobs), config.device, decode, score,
                                       plugins=tuple(str(p) for p in config.plugins), decoded_dir=worker_files))
    # Longest work first, so the pool's last tasks are short ones and no worker idles while one finishes; but the
    # shortest task goes first of all, so that the first unit (with its worker's one-off start-up) is done soon.
    plan.tasks.sort(key=_task_work, reverse=True)
    if len(plan.tasks) > 1:
        plan.tasks.insert(0, plan.tasks.pop())
    return plan


def _task_work(task: ItemTask) -> float:
    """Audio seconds × (codec runs + metric values) of a task: its share of the work, roughly."""
    return task.item.seconds * sum(1 + len(j.metrics) for j in task.jobs)


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs_function():
    """Linux's ``syncfs(2)`` through libc, or ``None`` where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _syncfs_function()


def _make_durable(paths: list[Path]) -> None:
    """Flush ``paths`` (written, not yet renamed) to disk: one ``syncfs`` of their filesystem where Linux has
    it (one journal commit for a whole batch of small files), else one ``fsync`` per file."""
    if _SYNCFS is not None:
        fd = os.open(paths[0].parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in paths:
        _fsync(path)


def _write_temporary(path: Path, writer) -> Path:
    """Write through a temporary name beside ``path`` (renamed into place once durable, see :class:`_Writer`)."""
    tmp = temporary_path(path)
    try:
        writer(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a disk-full write leaves no partial file behind
        raise
    return tmp


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a handle, so numpy does not append ".npy" to the temporary name
        np.save(fh, array)


WRITE_BATCH_UNITS = 1024  # units buffered before one store transaction (one disk sync) ...
WRITE_BATCH_S = 1.0  # ... or once this many seconds have passed since the last write (slow units: one by one) ...
WRITE_BATCH_SAMPLES = 1 << 22  # ... or once the buffered decoded audio holds this many samples (16 MiB)


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block ends, then deliver it; in the main thread only."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield  # signal handlers can only be set from the main thread, and one set from C cannot be restored
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


class _Writer:
    """Coordinator side: cache files first (fsynced, atomic renames), then one store transaction per batch of
    units (the first unit alone, then up to :data:`WRITE_BATCH_UNITS`, what finished within :data:`WRITE_BATCH_S`
    of the last write, or fewer holding :data:`WRITE_BATCH_SAMPLES` of decoded audio): a killed run loses at most
    the work of that last second and never a part of a unit. Use it as a context manager: leaving writes what is
    still buffered (on Ctrl-C too).

    Batches are written by one background thread (file writes, disk syncs and SQLite release the GIL), so the
    coordinator goes on receiving units and handing out tasks meanwhile: a worker does not wait for a batch to be
    written. One batch is written while the next fills (at most three batches' audio is held); a unit whose audio
    alone fills a batch (a long item) is waited for, so its audio is not held twice. The thread is the store's
    only user while units run."""

    def __init__(self, store: Store, output: Path, report: RunReport, bar: tqdm):
        self.store, self.report, self.bar, self.output = store, report, bar, output
        self.decoded_dir = output.joinpath(*DECODED_CACHE)
        self.codes_dir = output.joinpath(*CODES_CACHE)
        self.pending: list[UnitOutcome] = []
        self.last_flush = time.monotonic()
        self.buffered_samples = 0  # decoded samples held in ``pending``
        self.failed = False
        self.written = 0
        self.submitted = 0
        self._batches: queue.Queue[list[UnitOutcome] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None  # a batch's write failed: raised in the coordinator's thread
        self._thread: threading.Thread | None = None
        for folder in (self.decoded_dir, self.codes_dir):
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(".*.tmp"):  # left by an interrupted write
                stale.unlink(missing_ok=True)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not self.failed:  # a failed write already said what was kept
                self.flush()
        finally:
            if self._thread is not None:
                self._batches.put(None)
                self._thread.join()

    def __call__(self, outcomes: list[UnitOutcome]) -> None:
        self._raise_failure()
        self.pending.extend(outcomes)
        self.buffered_samples += sum(o.decoded.size for o in outcomes if o.decoded is not None)
        first = self.submitted == 0  # the first unit is stored at once: the run shows its first result soon
        # one unit's audio fills a batch (a long item): written before the next unit's is received
        alone = any(o.decoded is not None and o.decoded.size >= WRITE_BATCH_SAMPLES for o in outcomes)
        if (first or self.buffered_samples >= WRITE_BATCH_SAMPLES or len(self.pending) >= WRITE_BATCH_UNITS
                or time.monotonic() - self.last_flush >= WRITE_BATCH_S):  # slow units are written one by one
            self._submit(wait=alone)

    def flush(self) -> None:
        """Write every buffered unit and wait until every batch is stored (Ctrl-C waits too: the units stored are
        the units counted); raises what a write raised."""
        self._submit(wait=True)

    def _submit(self, wait: bool) -> None:
        batch, self.pending = self.pending, []
        self.last_flush, self.buffered_samples = time.monotonic(), 0
        if batch:
            self.submitted += len(batch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_batches, name="evalkit-store-writer",
                                                daemon=True)
                self._thread.start()
            try:
                self._batches.put(batch)  # waits while the batch before this one has not been taken up
            except BaseException:  # Ctrl-C while waiting: the batch stays buffered, leaving writes it
                self.pending[:0] = batch
                self.submitted -= len(batch)
                raise
            del batch
        if wait and self._thread is not None:
            with _sigint_deferred():
                self._batches.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None and not self.failed:
            self.failed = True
            raise self._error

    def _write_batches(self) -> None:
        """The writer thread: write each batch handed over, until ``None``; after a failure, write nothing more
        (the run stops with the failure: what is not written is recomputed by the next run)."""
        while True:
            batch = self._batches.get()
            try:
                if batch is None:
                    return
                if self._error is None:
                    self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - raised again in the coordinator's thread
                self._error = exc
            finally:
                del batch  # a long item's decoded audio is not held while waiting for the next batch
                self._batches.task_done()

    def _write(self, batch: list[UnitOutcome]) -> None:
        """Write one batch: files under temporary names, made durable together, renamed into place, one fsync
        per folder, then one store transaction."""
        written: list[tuple[Path, Path]] = []  # (temporary, final)
        try:
            rows = [self._files(outcome, written) for outcome in batch]
            if written:
                _make_durable([tmp for tmp, _ in written])
            for tmp, final in written:
                os.replace(tmp, final)
            written.clear()
            for folder in {(self.output / p).parent for row in rows for p in row[1]}:
                _fsync(folder, os.O_RDONLY | os.O_DIRECTORY)  # the renames are durable before the rows commit
            self.store.write_units([(unit, outcome.results, outcome.variant_info)
                                    for (unit, _), outcome in zip(rows, batch, strict=True)])
        except (OSError, sf.LibsndfileError) as exc:  # disk full, folder gone: one line, nothing lost
            for tmp, _ in written:
                tmp.unlink(missing_ok=True)
            path = getattr(exc, "filename", None) or self.output / "cache"
            raise write_failure(path, exc, self.report.units_run + self.report.units_rescored) from None
        self.written += len(batch)
        for (unit, _), outcome in zip(rows, batch, strict=True):
            self._count(unit, outcome)

    def _files(self, outcome: UnitOutcome, written: list[tuple[Path, Path]]) -> tuple[UnitRow, list[str]]:
        """Write the unit's cache files under temporary names (added to ``written`` with their final paths);
        returns its row to store and the files' stored paths."""
        unit = outcome.unit
        updates = {}
        if outcome.decoded is not None:
            path = self.decoded_dir / f"{unit.unit_key}.wav"
            written.append((_write_temporary(path, lambda p, o=outcome, u=unit: audio_lib.save_float_wav(
                p, o.decoded, u.input_rate)), path))
            updates["decoded_path"] = stored_path(path, self.output)
        elif outcome.decoded_file is not None:  # written by the worker under a temporary name
            path = self.decoded_dir / f"{unit.unit_key}.wav"
            written.append((Path(outcome.decoded_file), path))
            updates["decoded_path"] = stored_path(path, self.output)
        if outcome.codes is not None:
            path = self.codes_dir / f"{unit.unit_key}.npy"
            written.append((_write_temporary(path, lambda p, o=outcome: _save_npy(p, o.codes)), path))
            updates["codes_path"] = stored_path(path, self.output)
        if outcome.rescored:
            existing = self.store.unit(unit.unit_key)
            level = {"input_peak_dbfs": unit.input_peak_dbfs, "input_over_full_scale": unit.input_over_full_scale}
            unit = UnitRow(**{**{k: existing[k] for k in UnitRow.__dataclass_fields__}, **level})  # fills older rows
        else:
            unit = UnitRow(**{**unit.__dict__, **updates})
        return unit, list(updates.values())

    def _count(self, unit: UnitRow, outcome: UnitOutcome) -> None:
        """Report and log a committed unit (a failed write reports the units really stored)."""
        codec_unit = unit.codec_spec != str(REFERENCE.spec)  # not the reference pseudo-unit
        if outcome.rescored:
            self.report.units_rescored += 1
        else:
            self.report.units_run += codec_unit
        for metric, seconds in outcome.warmup_s.items():
            self.report.warmup_s[metric] = self.report.warmup_s.get(metric, 0.0) + seconds
            log.info("warm-up of %s in a worker: %.2f s (not charged to %s)", metric, seconds, unit.item_id)
        if unit.status in (UnitStatus.FAILED, UnitStatus.ERROR) and codec_unit:
            self.report.units_failed += 1
            log.warning("%s x %s %s: %s", unit.item_id, unit.codec_spec, unit.status, unit.reason)
        self.bar.update(1)


def run_evaluation(config: RunConfig, specs: list[CodecSpec], *, executor: str | None = None,
                   scheduler: str | None = None, fresh: bool = False, progress: bool = True,
                   connect_timeout_s: float | None = None) -> RunReport:
    """Evaluate the dataset through every codec variant; resumable and idempotent.

    Returns a report with counts, skipped variants, export paths and the printed tables; exports and tables
    hold exactly the rows of this plan (older rows stay in the store).

    ``executor`` and ``scheduler``, when given, replace the config's ``executor.kind`` and
    ``executor.scheduler``. With ``executor="dask"`` the scheduler at ``scheduler`` is connected to (within
    ``connect_timeout_s``, default :data:`~evalkit.runner.executors.DASK_CONNECT_TIMEOUT_S`) before the store
    is opened or ``fresh`` deletes anything; with ``"slurm"`` the worker job is checked by
    ``sbatch --test-only`` first, and every job is cancelled on leaving (Ctrl-C included).

    Raises:
        ConfigError: an output folder that overlaps the dataset or holds files evalkit did not write (see
            :func:`~evalkit.runner.output.check_output`), not writable or in use, a low-pass cut-off at or above an
            item's Nyquist frequency, or codec parameters the codec library refuses for some items' rate and
            channels (:func:`codec_input_problems`; all before any unit runs).
        WeightsNotFound: an explicit ``weights=PATH`` that does not exist.
        DaskSchedulerError: no Dask scheduler at ``scheduler``, or the scheduler was lost during the run
            (``DaskSchedulerLost``: every unit written so far is kept).
        RunInterrupted: Ctrl-C; the workers are stopped and every unit written so far is kept.
    """
    t0 = time.perf_counter()
    output = Path(config.output)
    report = RunReport(output, output / STORE_NAME)
    check_output(config)
    updates = {"kind": executor, "scheduler": scheduler}
    config = config.model_copy(update={"executor": config.executor.model_copy(
        update={k: v for k, v in updates.items() if v is not None})})
    executor = config.executor.kind
    if executor == "local":  # under Dask the workers are the cluster's
        config = config.model_copy(update={"workers": local_workers(config.workers)})
    with output_lock(output):
        try:
            _run_locked(config, specs, report, fresh, progress, connect_timeout_s)
        except KeyboardInterrupt:
            raise RunInterrupted(report.units_run + report.units_rescored) from None
        except DaskSchedulerLost as exc:
            kept = report.units_run + report.units_rescored
            raise DaskSchedulerLost(f"{exc}; every unit stored so far is kept ({kept} from this run): rerun to "
                                    f"resume") from None
        except sqlite3.Error as exc:  # corrupt, full or read-only store: one line; committed units are kept
            raise store_failure(report.store, exc, report.units_run + report.units_rescored) from None
    if report.warmup_s and report.speed_table:
        report.speed_table += ("\nwarm-up, once per worker and not in the factors above (s): "
                               + ", ".join(f"{m} {s:.2f}" for m, s in sorted(report.warmup_s.items())))
    report.wall_s = time.perf_counter() - t0
    return report


def _run_locked(config: RunConfig, specs: list[CodecSpec], report: RunReport, fresh: bool, progress: bool,
                connect_timeout_s: float | None) -> None:
    settings = config.executor
    if settings.kind == "dask":  # connected before the store is touched: a wrong address deletes nothing
        with dask_client(settings.scheduler, config.workers, connect_timeout_s,
                         str(report.output / LOG_NAME)) as client:
            _plan_and_run(config, specs, report, fresh, progress, None, client)
        return
    if settings.kind == "slurm":  # jobs checked by sbatch before the store is touched, cancelled on leaving
        with slurm_client(settings, str(report.output / LOG_NAME), str(report.output / SLURM_LOGS)) as client:
            _plan_and_run(config.model_copy(update={"workers": settings.slurm_jobs}), specs, report, fresh,
                          progress, None, client)
        return
    plugins = tuple(str(p) for p in config.plugins)
    prepare = functools.partial(prepare_worker, tuple(str(s) for s in specs), config.device, _metrics_in_view(config))
    with local_pool(config.workers, str(report.output / LOG_NAME), plugins, prepare) as pool:  # start while we plan
        _plan_and_run(config, specs, report, fresh, progress, pool)


def _import_exports() -> None:
    import scipy.stats  # noqa: F401 - what the exports' intervals need

    import evalkit.runner.exports  # noqa: F401


def _plan_and_run(config: RunConfig, specs: list[CodecSpec], report: RunReport, fresh: bool, progress: bool,
                  pool: LocalPool | None, client=None) -> None:
    """Plan and run every pending unit: on ``client``'s Dask cluster when given, else locally (in ``pool``)."""
    output = report.output
    started = time.time()
    variants = [plan_variant(s, config.device) for s in specs]
    known = ListingCache(output.joinpath(*LISTING_CACHE), read=not fresh)
    try:
        items = list(list_items(config.dataset, exclude=output, known=known))
    except ValueError as exc:
        raise ConfigError("dataset", [str(exc)]) from None
    if known.reused:
        log.info("listing: %d of %d dataset files unchanged since the last listing, not read again", known.reused,
                 len(items))
    if problems := nyquist_problems(items, variants) + codec_input_problems(items, variants, config.channel_policy):
        raise ConfigError("codecs", problems)
    if fresh:
        discard_run_files(output)
    known.save()
    report.variants_skipped = [(str(v.spec), v.skipped) for v in variants if v.skipped]
    for spec, reason in report.variants_skipped:
        log.info("skipping %s: %s", spec, reason)
    with Store(report.store) as store:
        plan = _plan(config, items, variants, store, report)
        store.set_current_plan(plan.units)
        pending_units = sum(len(t.jobs) for t in plan.tasks)
        # the exports' imports (pandas, scipy.stats: a second, 125 MB) load while this process mostly waits for
        # workers; not beside a long item, whose worker's peak they would add to (its run is minutes anyway)
        long_items = any(scored_segment_s(task.item, task.decode) is not None for task in plan.tasks)
        importer = None if long_items else threading.Thread(target=_import_exports, name="evalkit-import-exports",
                                                            daemon=True)
        if importer is not None:
            importer.start()
        with tqdm(total=pending_units, desc="units", unit="unit", disable=not progress, dynamic_ncols=True) as bar, \
                _Writer(store, output, report, bar) as writer:
            if client is not None:
                run_dask(iter(plan.tasks), config.workers, writer, client)
            else:
                run_local(iter(plan.tasks), config.workers, writer, log_path=str(output / LOG_NAME), pool=pool,
                          plugins=tuple(str(p) for p in config.plugins))
        if importer is not None:
            importer.join()
        import evalkit.runner.exports as exports  # pandas: not imported by worker processes, which import this

        try:
            report.exports, report.summary_table, report.speed_table = exports.write_all(
                store, plan, output, seed=config.seed)
        except OSError as exc:  # every unit is in the store: a rerun writes the exports again
            raise write_failure(exc.filename or output, exc, report.units_run + report.units_rescored) from None
        report.over_full_scale = exports.over_full_scale_items(store, plan)
        if report.over_full_scale:  # once per run, for this run's plan (units of earlier runs included)
            log.warning(exports.over_full_scale_warning(report.over_full_scale))
    try:
        record = run_provenance(config, variants, report, started)
        report.exports["provenance_json"] = write_provenance(output, record)
    except OSError as exc:
        raise write_failure(exc.filename or output / "run.json", exc) from None
