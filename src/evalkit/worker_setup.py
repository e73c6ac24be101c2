"""Start-up of a worker process: thread counts and log routing, before any numerical library is imported.

With ``W`` worker processes on ``C`` cores each worker gets ``C // W`` threads for torch, OpenMP and numba
(ViSQOL's JIT kernels run numba-parallel), and numpy's BLAS one thread. Without this, every process starts one
thread per core in each of those pools and the workers fight over the cores. BLAS and numba read their thread
count once, when they are imported, so :func:`init_worker` must run first in the process: this module imports
nothing heavy, and a pool's initializer should be :func:`init_worker` itself (importing a runner module would
import numpy first), and :func:`serve_tasks` receives the task function through its queue, after start-up.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.abc
import importlib.util
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass

from evalkit.native_memory import own_process, release_free_memory

# Thread-count variables read at import time: OpenMP (torch's intra-op pool), numba; numpy's BLAS (OpenBLAS, or
# MKL in some builds) gets one thread: see init_worker.
THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")
BLAS_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process sets up before its first task.

    Attributes:
        threads: threads per library pool (torch, BLAS, numba).
        log_path: file for the worker's log records, Python warnings and C-level stderr (``None``: leave them).
        verbose: also show the worker's log records on the console, and leave its stderr alone.
    """

    threads: int
    log_path: str | None = None
    verbose: bool = False
    parent_pid: int | None = None  # exit when this process (the coordinator) dies
    plugins: tuple[str, ...] = ()  # codec and metric plugin files to import (the coordinator checked them)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Heaps are trimmed after tasks that ran this long (a trim costs ~0.5 ms: nothing next to such a task, 6 % of a
# task of three one-second SI-SDR units); long items are also trimmed after each metric segment.
TRIM_AFTER_S = 0.5
PARENT_POLL_S = 1.0


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:  # re-parented: the coordinator is gone
            os._exit(1)
        time.sleep(PARENT_POLL_S)


def exit_with_parent(parent_pid: int) -> None:
    """Make this worker process exit as soon as ``parent_pid`` (its parent) dies, however it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # the polling thread below still works
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="evalkit-parent-watch", daemon=True).start()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and ``taskset`` restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """``cores // workers``, at least 1.

    >>> threads_per_worker(2, cores=2), threads_per_worker(3, cores=16), threads_per_worker(4, cores=2)
    (1, 5, 1)
    """
    return max(1, (cores or available_cores()) // max(1, workers))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds module ``name`` with the other finders and has its loader call ``then(module)`` once it ran."""

    def __init__(self, name: str, then: Callable[[types.ModuleType], None]):
        self.name, self.then = name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once; and importlib.util.find_spec below must not come back here
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module, then = spec.loader.exec_module, self.then

        def exec_module(module: types.ModuleType) -> None:
            run_module(module)
            then(module)

        spec.loader.exec_module = exec_module
        return spec


def after_import(name: str, then: Callable[[types.ModuleType], None]) -> None:
    """Call ``then(module)`` when top-level module ``name`` is imported (at once when it already is)."""
    if name in sys.modules:
        then(sys.modules[name])
    else:
        sys.meta_path.insert(0, _AfterImport(name, then))


def init_worker(setup: WorkerSetup) -> None:
    """Pool initializer: thread counts (environment for libraries not imported yet, their APIs for those
    already imported, torch's when it is imported) and log routing. With a ``parent_pid`` the worker ignores
    Ctrl-C (the coordinator handles it) and exits when the coordinator dies. The worker may tune its allocator
    for long items (:func:`evalkit.native_memory.own_process`)."""
    own_process()
    if setup.parent_pid is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        exit_with_parent(setup.parent_pid)
    for name in THREAD_ENV:
        os.environ[name] = str(setup.threads)
    # The metrics' numpy BLAS calls are dot products and small matrices, too short to share: a second thread,
    # woken for each call (or spinning between them, taking the core the coordinator needs), made SI-SDR on
    # one-second items 1.25x slower in a one-worker run on 2 cores; torch's own pool keeps ``threads``
    for name in BLAS_THREAD_ENV:
        os.environ[name] = "1"
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(setup.threads, numba.config.NUMBA_NUM_THREADS))
    from evalkit.logs import route_process_output

    route_process_output(setup.log_path, setup.verbose)
    # torch is not imported here: a run of array transforms (FFmpeg codecs, anchors) and numpy metrics never needs
    # it (a second and 300 MB less per worker). Where one does, the import happens outside the units' timing (the
    # worker's preparation for a model codec, a metric's warm-up), and torch gets its threads then
    # (MKL_NUM_THREADS=1 would give it 1)
    def torch_threads(torch) -> None:
        torch.set_num_threads(setup.threads)

    after_import("torch", torch_threads)
    if setup.plugins:
        import logging

        from evalkit.codecs import PluginError, load_plugin_files
        from evalkit.metrics import load_metric_plugins

        try:
            load_plugin_files(setup.plugins)
            load_metric_plugins(setup.plugins)
        except PluginError as exc:  # each task imports them again and records the failure in its units
            logging.getLogger(__name__).warning("worker start-up: %s", exc)


#: Large arrays of an outcome travel as raw bytes on the worker's pipe (POSIX pipes: ``os.write``/``os.readv``).
RAW_TRANSFER = os.name == "posix"


def _bulk_of(outcome):
    detach = getattr(outcome, "detach_bulk", None)
    return detach() if RAW_TRANSFER and detach is not None else None


def send_outcome(results, task_id: int, outcome) -> None:
    """Send ``("unit", task_id, outcome, bulk)``; where the outcome gives up a large array (``detach_bulk()``:
    a long item's decoded audio), ``bulk`` is its ``(shape, dtype)`` and its bytes follow on the pipe, so neither
    end holds a pickled copy of it (:func:`receive_message` puts it back)."""
    _send_with_bulk(results, task_id, outcome, _bulk_of(outcome))


def _send_with_bulk(results, task_id: int, outcome, bulk) -> None:
    results.send(("unit", task_id, outcome, None if bulk is None else (bulk.shape, bulk.dtype.str)))
    if bulk is not None:
        view = memoryview(bulk).cast("B")
        while view:
            view = view[os.write(results.fileno(), view):]


#: A unit's outcome waits at most about this long in its worker to travel with the next units of its task, in one
#: message: a message costs the worker more than a millisecond-long unit's records (a batch of 2,000 one-second
#: SI-SDR items, 3 variants each: 0.05 ms less per unit, measured)
HOLD_S = 0.05


class Outbox:
    """A worker's sending end (:func:`serve_tasks`): messages leave in order, and outcomes without a large array
    are held until the task ends or the oldest has waited :data:`HOLD_S` (a thread sends them then, should the
    next unit take longer), so a task of quick units sends one message, not one per unit."""

    def __init__(self, results):
        self.results = results
        self._lock = threading.Lock()
        self._held: list = []
        self._task_id: int | None = None
        self._since = 0.0
        self._failure: Exception | None = None  # the thread's failed send, raised by the next call here
        threading.Thread(target=self._send_late, name="evalkit-outbox", daemon=True).start()

    def send(self, message: tuple) -> None:
        """Send ``message`` after what is held."""
        with self._lock:
            self._flush()
            self.results.send(message)

    def unit(self, task_id: int, outcome) -> None:
        """Send one unit's outcome, or hold it (see the class)."""
        with self._lock:
            self._raise_failure()
            bulk = _bulk_of(outcome)
            if bulk is not None:
                self._flush()
                _send_with_bulk(self.results, task_id, outcome, bulk)
                return
            if not self._held:
                self._task_id, self._since = task_id, time.monotonic()
            self._held.append(outcome)
            if time.monotonic() - self._since >= HOLD_S:
                self._flush()

    def done(self, task_id: int) -> None:
        """The task is finished: ``("units", id, held outcomes, True)``, or ``("done", id)`` when none are held."""
        with self._lock:
            self._raise_failure()
            if self._held:
                self._flush(done=True)
            else:
                self.results.send(("done", task_id))

    def _flush(self, done: bool = False) -> None:
        if self._held:  # a batch that fails to go (an outcome that cannot be pickled) is dropped: its units are
            held, self._held = self._held, []  # recorded as errors by the coordinator, with the task's crash
            self.results.send(("units", self._task_id, held, done))

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _send_late(self) -> None:
        while True:
            time.sleep(HOLD_S / 2)
            with self._lock:
                if self._held and time.monotonic() - self._since >= HOLD_S:
                    try:
                        self._flush()
                    except OSError:  # the coordinator is gone: the worker exits with it
                        return
                    except Exception as exc:  # noqa: BLE001 - the task's next call raises it: a crash message
                        self._failure = exc


def receive_message(results) -> tuple:
    """The next message of a worker's pipe, a ``"unit"`` message with its raw array read back into the outcome
    (``attach_bulk``). Raises ``EOFError`` when the pipe ends, in the middle of an array too."""
    message = results.recv()
    if message[0] == "unit" and message[3] is not None:
        import numpy as np

        shape, dtype = message[3]
        bulk = np.empty(shape, dtype)
        view = memoryview(bulk).cast("B")
        while view:
            read = os.readv(results.fileno(), [view])
            if read == 0:
                raise EOFError("the worker's pipe ended in the middle of an array")
            view = view[read:]
        message[2].attach_bulk(bulk)
    return message


def serve_tasks(setup: WorkerSetup, inbox, results, worker_id: int) -> None:
    """Main loop of a local pool worker (:mod:`evalkit.runner.executors`): set up, then run item tasks.

    ``inbox`` (a queue) brings first the function that runs one task (``task -> iterator of outcomes``; the pool
    sends it, so this module knows no runner, and unpickling it imports numpy only now, after the thread counts
    are set) with one to call before the first task or ``None``, then ``(task_id, task)`` pairs and finally
    ``None``; every message goes back through ``results`` (this worker's own pipe, so a worker killed
    mid-message corrupts nothing shared): ``("ready",)``, then per task ``("start", id)``, the units' outcomes as
    they finish (:class:`Outbox`: ``("units", id, [UnitOutcome, ...], done)`` for quick ones, several together,
    ``done`` true when they end the task; ``("unit", id, UnitOutcome, bulk)`` for one with a large array, see
    :func:`send_outcome`), and ``("done", id)`` when nothing was left to send with the last units, or
    ``("crash", id, "Type: message")`` when something escaped the task.
    """
    init_worker(setup)
    iter_item_task, prepare = inbox.get()
    # start-up's objects (numpy, evalkit) are never garbage: the collector's full passes, one per few thousand
    # units, skip them from now on
    gc.freeze()

    outbox = Outbox(results)
    outbox.send(("ready", worker_id))
    if prepare is not None:  # while the coordinator plans
        prepare()
    while (message := inbox.get()) is not None:
        task_id, task = message
        outbox.send(("start", task_id))
        started = time.monotonic()
        try:
            for outcome in iter_item_task(task):
                outbox.unit(task_id, outcome)
                del outcome  # a long item's decoded audio is sent: not held while the next unit runs
            outbox.done(task_id)
        except Exception as exc:  # noqa: BLE001 - reported; the coordinator records the task's other units
            outbox.send(("crash", task_id, f"{type(exc).__name__}: {exc}"))
            continue
        if time.monotonic() - started >= TRIM_AFTER_S:  # a long item's arrays, left free in the heaps
            release_free_memory()
    results.close()
