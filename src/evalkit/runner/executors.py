"""Executors: run item tasks in-process, in a local process pool, or on a Dask cluster.

All three stream: at most ``2 × workers`` tasks are in flight, so memory does not grow with the dataset.
Outcomes are handed to ``on_outcome`` in the coordinating process as they complete.

Local pool workers ignore SIGINT (the coordinator handles Ctrl-C and stops them) and exit when the
coordinator dies, even by SIGKILL: ``PR_SET_PDEATHSIG`` on Linux, plus a thread polling the parent's pid.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from evalkit.runner.work import ItemTask, UnitOutcome, run_item_task
from evalkit.worker_setup import WorkerSetup, init_worker, threads_per_worker

log = logging.getLogger(__name__)
OnOutcome = Callable[[list[UnitOutcome]], None]


def run_local(tasks: Iterable[ItemTask], workers: int, on_outcome: OnOutcome, log_path: str | None = None,
              plugins: tuple[str, ...] = ()) -> None:
    """Run tasks in this process (one worker) or a pool of ``workers`` processes, each given cores / workers
    threads and, with ``log_path``, its log records, warnings and library chatter sent there; each pool worker
    imports the ``plugins`` files at start-up (every task also does, once per process: Dask workers too)."""
    if workers == 1:
        for task in tasks:
            on_outcome(run_item_task(task))
        return
    context = multiprocessing.get_context("spawn")  # torch's thread pools do not survive fork
    setup = WorkerSetup(threads_per_worker(workers), log_path, logging.getLogger().isEnabledFor(logging.DEBUG),
                        parent_pid=os.getpid(), plugins=tuple(plugins))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(setup,))
    try:
        pending = set()
        for task in tasks:
            pending.add(pool.submit(run_item_task, task))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_outcome(future.result())
        for future in pending:
            on_outcome(future.result())
    except BaseException:  # Ctrl-C included: stop the workers now rather than after their tasks
        stop_pool(pool)
        raise
    # Every task is done: the workers exit on their own (joined at interpreter exit) while the caller writes
    # its exports, instead of the caller waiting about a second for their teardown.
    pool.shutdown(wait=False)


def stop_pool(pool: ProcessPoolExecutor, timeout_s: float = 5.0) -> None:
    """Cancel queued tasks and terminate the pool's worker processes (SIGTERM, then SIGKILL)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def run_dask(tasks: Iterable[ItemTask], workers: int, on_outcome: OnOutcome, scheduler: str | None = None) -> None:
    """Send the same tasks to a Dask cluster (``scheduler`` address, or a LocalCluster of ``workers``).

    Workers must be able to read the dataset paths (shared filesystem); results come back to this process.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        futures = as_completed()
        in_flight = 0
        limit = 2 * max(1, len(client.scheduler_info().get("workers", {})) or workers)
        for task in tasks:
            futures.add(client.submit(run_item_task, task, pure=False))
            in_flight += 1
            if in_flight >= limit:
                on_outcome(next(futures).result())
                in_flight -= 1
        for future in futures:
            on_outcome(future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
