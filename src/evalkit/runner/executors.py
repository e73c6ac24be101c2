"""Executors: run item tasks in-process, in a local pool of worker processes, or on a Dask cluster.

All three stream: at most ``2 × workers`` tasks are in flight, so memory does not grow with the dataset.
Outcomes are handed to ``on_outcome`` in the coordinating process as they complete; the local executors hand
over each unit within about 0.05 s of its end (quick units of one item travel together), not when its whole item
is.

Local pool workers ignore SIGINT (the coordinator handles Ctrl-C and stops them) and exit when the
coordinator dies, even by SIGKILL: ``PR_SET_PDEATHSIG`` on Linux, plus a thread polling the parent's pid.
A worker that dies itself (killed, segmentation fault, out of memory) costs only the item it was working on:
that item's units not yet handed over are recorded as ``error`` with the worker's exit signal as the reason (the
next run retries them), the tasks queued for it go to the other workers, and a new worker takes its place.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from evalkit.errors import UserError
from evalkit.runner.work import ItemTask, UnitOutcome, error_outcomes, iter_item_task, run_item_task
from evalkit.worker_setup import WorkerSetup, receive_message, serve_tasks, threads_per_worker

log = logging.getLogger(__name__)
OnOutcome = Callable[[list[UnitOutcome]], None]
TASKS_PER_WORKER = 2  # one running, one queued: a worker never waits for the coordinator between tasks
MAX_START_FAILURES = 3  # workers in a row that die before finishing any task: stop the run


PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged process (/proc/sys/fs/pipe-max-size)


def widen_pipe(connection, size: int = PIPE_BYTES) -> None:
    """Give a pipe a ``size``-byte buffer where the system allows it (Linux), so a worker can write a unit's
    message (a second of decoded audio is 64 KiB or more: as large as a default pipe) without waiting for the
    coordinator to wake up and read it; elsewhere, or beyond the limit, the pipe stays as it is."""
    import fcntl

    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(connection.fileno(), set_size, size)


class WorkerDied(RuntimeError):
    """The worker process running an item died; the message says how (its signal or exit code)."""


class WorkersCannotStart(RuntimeError):
    """Worker processes keep dying before they finish a single task (a broken environment, not the data)."""


def death_reason(exitcode: int | None, pid: int | None) -> str:
    """How a worker process ended, for the reason of its item's units.

    >>> death_reason(-9, 41)
    'worker process 41 died (killed by signal SIGKILL: out of memory or killed by hand) while running this item'
    >>> death_reason(3, 41)
    'worker process 41 died (exit code 3) while running this item'
    """
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = {"SIGKILL": ": out of memory or killed by hand", "SIGSEGV": ": segmentation fault in native code",
                "SIGBUS": ": bus error in native code", "SIGABRT": ": aborted by native code"}.get(name, "")
        how = f"killed by signal {name}{hint}"
    else:
        how = f"exit code {exitcode}"
    return f"worker process {pid} died ({how}) while running this item"


def run_local(tasks: Iterable[ItemTask], workers: int, on_outcome: OnOutcome, log_path: str | None = None,
              pool: LocalPool | None = None, plugins: tuple[str, ...] = ()) -> None:
    """Run tasks in this process (``workers`` 0: no isolation from a native crash; for debugging and tests that
    patch code) or a pool of ``workers`` child processes (one too), each given cores / workers
    threads and, with ``log_path``, its log records, warnings and library chatter sent there; each pool worker
    imports the ``plugins`` files at start-up (every task also does, once per process: Dask workers too).

    ``pool``: one started by :func:`local_pool` (which also closes it), whose workers have been starting up
    while the caller planned the tasks.
    """
    if workers == 0:
        for task in tasks:
            for outcome in iter_item_task(task):
                on_outcome([outcome])
        return
    if pool is not None:
        pool.run(iter(tasks), on_outcome)
        return
    with local_pool(workers, log_path, plugins) as started:
        started.run(iter(tasks), on_outcome)


@contextmanager
def local_pool(workers: int, log_path: str | None = None, plugins: tuple[str, ...] = (),
               prepare: Callable[[], None] | None = None) -> Iterator[LocalPool | None]:
    """Start the worker processes now (one worker too: a native crash then costs one item, not the run); each
    calls ``prepare`` (picklable) once started, before its first task. On leaving, let them exit after their
    work, or stop them at once on an exception (Ctrl-C included). ``None`` for 0 workers (tasks then run in
    this process)."""
    if workers == 0:
        yield None
        return
    setup = WorkerSetup(threads_per_worker(workers), log_path, logging.getLogger().isEnabledFor(logging.DEBUG),
                        parent_pid=os.getpid(), plugins=tuple(plugins))
    pool = LocalPool(workers, setup, prepare)
    try:
        yield pool
    except BaseException:  # Ctrl-C included: stop the workers now rather than after their tasks
        pool.stop()
        raise
    # Every task is done: the workers exit on their own while the caller writes its exports.
    pool.close()


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    inbox: object  # multiprocessing Queue of (task id, ItemTask) | None
    results: object  # the receiving end of the worker's pipe
    assigned: deque = field(default_factory=deque)  # task ids sent, oldest (the running one) first
    started: set = field(default_factory=set)  # task ids the worker said it started
    ready: bool = False


@dataclass
class _Pending:
    task: ItemTask
    finished: set = field(default_factory=set)  # unit keys handed to on_outcome


class LocalPool:
    """Worker processes (spawned: torch's thread pools do not survive fork), each with its own task queue and
    result pipe, so the coordinator always knows which item a dead worker was running."""

    def __init__(self, workers: int, setup: WorkerSetup, prepare: Callable[[], None] | None = None):
        self.size, self.setup, self.prepare = workers, setup, prepare
        self.context = multiprocessing.get_context("spawn")
        self.workers: dict[int, _Worker] = {}
        self._next_worker = 0
        self.start_failures = 0
        for _ in range(workers):
            self._start_worker()

    def _start_worker(self) -> None:
        worker_id, self._next_worker = self._next_worker, self._next_worker + 1
        inbox = self.context.Queue()
        receiver, sender = self.context.Pipe(duplex=False)
        widen_pipe(sender)
        process = self.context.Process(target=serve_tasks, args=(self.setup, inbox, sender, worker_id),
                                       name=f"evalkit-worker-{worker_id}")
        process.start()
        inbox.put((iter_item_task, self.prepare))  # the worker's first message: how to run a task (serve_tasks)
        sender.close()  # the worker holds the only sending end: its death shows as end-of-file here
        self.workers[worker_id] = _Worker(process, inbox, receiver)

    def run(self, tasks: Iterator[ItemTask], on_outcome: OnOutcome) -> None:
        """Run every task, handing each finished unit to ``on_outcome``; returns when all are done."""
        pending: dict[int, _Pending] = {}
        requeued: deque[int] = deque()  # tasks of a dead worker that it had not started
        ids = iter(range(1 << 62))
        exhausted = False
        while True:
            for worker in sorted(self.workers.values(), key=lambda w: len(w.assigned)):
                while len(worker.assigned) < TASKS_PER_WORKER:
                    if requeued:
                        task_id = requeued.popleft()
                    elif not exhausted and (task := next(tasks, None)) is not None:
                        task_id = next(ids)
                        pending[task_id] = _Pending(task)
                    else:
                        exhausted = True
                        break
                    worker.inbox.put((task_id, pending[task_id].task))
                    worker.assigned.append(task_id)
            if not pending:
                return
            by_handle = {}
            for worker_id, worker in self.workers.items():
                by_handle[worker.results] = by_handle[worker.process.sentinel] = worker_id
            for handle in wait(list(by_handle)):
                worker_id = by_handle[handle]
                if worker_id not in self.workers:  # already handled in this round (pipe and sentinel both ready)
                    continue
                worker = self.workers[worker_id]
                if handle is worker.results:
                    try:
                        message = receive_message(worker.results)
                    except (EOFError, OSError):  # the worker is gone; its exit code says how
                        self._died(worker_id, pending, requeued, on_outcome)
                        continue
                    self._handle(worker, message, pending, on_outcome)
                    del message  # a long item's decoded audio is written: not held while waiting for the next
                else:
                    self._drain(worker, pending, on_outcome)
                    self._died(worker_id, pending, requeued, on_outcome)

    def _handle(self, worker: _Worker, message: tuple, pending: dict[int, _Pending], on_outcome: OnOutcome) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "start":
            worker.started.add(message[1])
        elif kind in ("unit", "units"):
            task_id = message[1]
            outcomes = [message[2]] if kind == "unit" else message[2]
            pending[task_id].finished.update(outcome.unit.unit_key for outcome in outcomes)
            on_outcome(outcomes)
            if kind == "units" and message[3]:  # they end the task
                self._task_ended(worker, task_id, pending)
        else:  # "done", or "crash": an exception escaped the task (a bug), its other units become errors
            task_id = message[1]
            if kind == "crash":
                self._record_rest(pending[task_id], RuntimeError(f"worker error: {message[2]}"), on_outcome)
            self._task_ended(worker, task_id, pending)

    def _task_ended(self, worker: _Worker, task_id: int, pending: dict[int, _Pending]) -> None:
        worker.assigned.remove(task_id)
        worker.started.discard(task_id)
        del pending[task_id]
        self.start_failures = 0

    @staticmethod
    def _record_rest(entry: _Pending, exc: BaseException, on_outcome: OnOutcome) -> None:
        rest = [job for job in entry.task.jobs if job.unit_key not in entry.finished]
        if rest:
            on_outcome(error_outcomes(entry.task, rest, exc))

    def _drain(self, worker: _Worker, pending: dict[int, _Pending], on_outcome: OnOutcome) -> None:
        """Handle what a dead worker sent before it died (complete messages only)."""
        while True:
            try:
                if not worker.results.poll():
                    return
                message = receive_message(worker.results)
            except (EOFError, OSError):
                return
            self._handle(worker, message, pending, on_outcome)

    def _died(self, worker_id: int, pending: dict[int, _Pending], requeued: deque[int],
              on_outcome: OnOutcome) -> None:
        """A worker is gone: its running item's unfinished units become errors, its queued tasks go back."""
        worker = self.workers.pop(worker_id)
        worker.process.join(5.0)
        if worker.process.is_alive():  # closed its pipe but did not exit: make sure
            worker.process.kill()
            worker.process.join()
        code, pid = worker.process.exitcode, worker.process.pid
        worker.results.close()
        worker.inbox.cancel_join_thread()  # tasks still queued for it are re-sent below
        worker.inbox.close()
        blamed = worker.assigned.popleft() if worker.assigned and worker.assigned[0] in worker.started else None
        requeued.extendleft(reversed(worker.assigned))
        reason = death_reason(code, pid)
        if blamed is not None:
            entry = pending.pop(blamed)
            log.warning("%s: %s; its unfinished units are recorded as errors, the run goes on",
                        entry.task.item.item_id, reason)
            self._record_rest(entry, WorkerDied(reason), on_outcome)
        else:
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise WorkersCannotStart(f"{self.start_failures} worker processes in a row died before finishing "
                                         f"a task (last: {reason.removesuffix(' while running this item')}); see "
                                         f"{self.setup.log_path or 'the log'}")
        if pending or requeued:
            self._start_worker()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate every worker now (SIGTERM, then SIGKILL after ``timeout_s``)."""
        workers = list(self.workers.values())
        self.workers.clear()
        for worker in workers:
            worker.process.terminate()
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.results.close()
            worker.inbox.cancel_join_thread()
            worker.inbox.close()

    def close(self) -> None:
        """Tell every worker to exit after its queue (which is empty once :meth:`run` returned); one still
        starting up (there was nothing to do) is stopped rather than waited for."""
        for worker in self.workers.values():
            if worker.ready or worker.assigned:
                worker.inbox.put(None)
            else:
                worker.process.terminate()
                worker.inbox.cancel_join_thread()
            worker.inbox.close()
            worker.results.close()
        self.workers.clear()


class DaskSchedulerError(UserError, RuntimeError):
    """The Dask scheduler cannot be reached (malformed address, nothing answering), or was lost during the run;
    the message is one line naming its address."""


class DaskSchedulerLost(DaskSchedulerError):
    """The connection to the Dask scheduler broke during the run; every unit stored before is kept."""


DASK_CONNECT_TIMEOUT_S = 10.0


#: A worker is sent only the tasks it runs (one per thread). Dask's default, 1.1, sends a one-thread worker a
#: second task to queue, and a worker's death counts against every task it held: an item queued behind one that
#: segfaults its workers would reach ``KilledWorker`` with it and be stored as an error.
ONE_TASK_PER_THREAD = {"distributed.scheduler.worker-saturation": 1.0}


@contextmanager
def _starting_cluster() -> Iterator[None]:
    """Around the creation of a Dask cluster whose scheduler runs here: :data:`ONE_TASK_PER_THREAD` for its
    scheduler, and Ctrl-C ignored while its processes start: they inherit that (an ignored signal survives
    ``exec``), so a Ctrl-C reaches the coordinator, which stops them, and not them (each would print its
    traceback)."""
    import dask

    with dask.config.set(ONE_TASK_PER_THREAD):
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            yield
            return
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _connect_failure(exc: BaseException) -> str:
    """The cause of a failed connection, one line (Dask's ``OSError`` names the address and the timeout)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _route_output_plugin(log_path: str, verbose: bool):
    """A Dask worker plugin that sends each worker's log records, warnings and stderr to ``log_path``, as the
    local pool's workers do (defined here: ``distributed`` is imported only by Dask runs; cloudpickle ships
    the class itself)."""
    from distributed import WorkerPlugin

    from evalkit.logs import route_process_output

    class RouteOutput(WorkerPlugin):
        def setup(self, worker) -> None:
            route_process_output(log_path, verbose)

    return RouteOutput()


@contextmanager
def dask_client(scheduler: str | None, workers: int, timeout_s: float | None = None,
                log_path: str | None = None) -> Iterator:
    """A Dask client connected to the scheduler at ``scheduler`` within ``timeout_s``, or to a new LocalCluster
    of ``workers`` single-threaded worker processes (at least one: ``workers: 0`` means in-process only for the
    local executor; they ignore Ctrl-C, the coordinator stops them, and send
    their output to ``log_path``, as the local pool's do); both are closed on leaving.

    ``timeout_s`` defaults to :data:`DASK_CONNECT_TIMEOUT_S`.

    Raises:
        DaskSchedulerError: ``dask.distributed`` is not installed, the address is malformed, or no scheduler
            answered there within ``timeout_s``.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise DaskSchedulerError(f"--executor dask needs dask.distributed ({exc}): pip install "
                                 f"'dask[distributed]'") from None
    timeout_s = DASK_CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    cluster = None
    if scheduler is None:
        with _starting_cluster():
            cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
        if log_path is not None:
            client.register_plugin(_route_output_plugin(log_path, logging.getLogger().isEnabledFor(logging.DEBUG)))
    else:
        from distributed.comm.addressing import get_address_host_port, normalize_address

        try:  # parsed first: a Client that fails to parse it prints a traceback when garbage-collected
            get_address_host_port(normalize_address(scheduler))
        except ValueError as exc:
            raise DaskSchedulerError(f"--scheduler {scheduler}: not a Dask scheduler address "
                                     f"({_connect_failure(exc)})") from None
        try:
            client = Client(scheduler, timeout=timeout_s)
        # OSError: refused, unreachable, unknown host (after the timeout); MemoryError: a peer that is not a
        # Dask scheduler, whose reply Dask reads as a frame length
        except (OSError, TimeoutError, MemoryError) as exc:
            raise DaskSchedulerError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler within "
                                     f"{timeout_s:g} s ({_connect_failure(exc)})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_dask(tasks: Iterable[ItemTask], workers: int, on_outcome: OnOutcome, client) -> None:
    """Send the same tasks to the Dask cluster of ``client`` (see :func:`dask_client`).

    Workers must be able to read the dataset paths (shared filesystem); results come back to this process. A
    task whose Dask workers keep dying (Dask's ``KilledWorker``) gets ``error`` units; the run goes on. On
    leaving early (Ctrl-C, an error) the tasks still queued or running are cancelled.

    Raises:
        DaskSchedulerLost: the connection to the scheduler broke; what was handed to ``on_outcome`` is kept.
    """
    from concurrent.futures import CancelledError

    from dask.distributed import KilledWorker, as_completed

    address = client.scheduler.address if client.scheduler is not None else "?"

    def outcomes(future) -> list[UnitOutcome]:
        task = submitted.pop(future)
        try:
            return future.result()
        except KilledWorker as exc:
            return error_outcomes(task, task.jobs, WorkerDied(f"Dask workers died running this item ({exc})"))

    submitted = {}
    try:
        futures = as_completed()
        limit = 2 * max(1, len(client.scheduler_info().get("workers", {})) or workers)
        for task in tasks:
            future = client.submit(run_item_task, task, pure=False)
            submitted[future] = task
            futures.add(future)
            if len(submitted) >= limit:
                on_outcome(outcomes(next(futures)))
        for future in futures:
            on_outcome(outcomes(future))
    except (CancelledError, OSError) as exc:  # Dask cancels every future when the scheduler connection is lost
        cause = getattr(exc, "reason", None) or " ".join(str(exc).split()) or type(exc).__name__
        raise DaskSchedulerLost(f"lost the Dask scheduler at {address} during the run ({cause})") from None
    finally:
        if submitted and client.status == "running":
            client.cancel(list(submitted))
