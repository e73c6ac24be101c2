"""The Slurm executor: Dask workers started as Slurm jobs through dask-jobqueue's ``SLURMCluster``.

The Dask scheduler runs in this (the coordinating) process; each Slurm job runs one Dask worker process that
works on one task at a time with the job's cores for its libraries' threads. The tasks then go through
:func:`~evalkit.runner.executors.run_dask`, as with ``--executor dask``. A job that ends early (cancelled,
pre-empted, past its walltime) is replaced within :data:`RESCALE_S` plus Dask's lost-worker timeout; its task
goes to another worker. Every job is cancelled when the run ends, by Ctrl-C too.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from evalkit.runner.config import ExecutorConfig
from evalkit.runner.executors import DaskSchedulerError, _route_output_plugin, _starting_cluster
from evalkit.worker_setup import THREAD_ENV

log = logging.getLogger(__name__)
RESCALE_S = 5.0  # how often the number of jobs is brought back to ``slurm_jobs``


class SlurmError(DaskSchedulerError):
    """Slurm refused the worker jobs (no ``sbatch``, unknown partition, too much memory...): one line."""


def worker_job_options(settings: ExecutorConfig, job_logs: str | None = None) -> dict:
    """``SLURMCluster`` keyword arguments for ``settings``: one single-task worker process per job, whose
    numerical libraries get the job's cores (Slurm's task/none plugin pins nothing, so they would take all)."""
    threads = settings.slurm_cores
    return dict(
        cores=settings.slurm_cores, processes=1, memory=settings.slurm_memory, walltime=settings.slurm_walltime,
        queue=settings.slurm_partition, python=sys.executable, job_name="evalkit-worker", log_directory=job_logs,
        worker_extra_args=["--nthreads", "1"],
        job_script_prologue=[f"export {name}={threads}" for name in THREAD_ENV],
        scheduler_options={"dashboard_address": None})


def _check_job(script: str) -> None:
    """``sbatch --test-only`` on the worker job script: Slurm's own verdict, before any job is queued."""
    if shutil.which("sbatch") is None:
        raise SlurmError("--executor slurm: no sbatch on PATH (run evalkit on a Slurm login node)")
    try:
        done = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise SlurmError("--executor slurm: sbatch --test-only did not answer within 60 s (is slurmctld up?)") \
            from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise SlurmError(f"--executor slurm: Slurm refuses the worker job ({lines[-1] if lines else 'no reason'})")


def _restore_ctrl_c() -> None:
    """Give Ctrl-C back its ``KeyboardInterrupt``: importing dask-jobqueue (0.9) replaces the SIGINT handler with
    ``sys.exit()``, whose exit code 0 would end the run as if it had finished, without the one line and 130."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return
    handler = signal.getsignal(signal.SIGINT)
    if getattr(handler, "__module__", "").startswith("dask_jobqueue"):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _keep_scaled(cluster, jobs: int, stop: threading.Event) -> None:
    while not stop.wait(RESCALE_S):
        try:  # starts a job for each worker Dask has given up on (after its lost-worker timeout)
            cluster.scale(jobs=jobs)
        except RuntimeError as exc:  # the cluster is closing
            log.debug("rescaling the Slurm jobs: %s", exc)
            return


@contextmanager
def slurm_client(settings: ExecutorConfig, log_path: str | None = None, job_logs: str | None = None) -> Iterator:
    """A Dask client of a new ``SLURMCluster`` with ``settings.slurm_jobs`` jobs queued (their workers send
    their output to ``log_path`` once started, the jobs' own output goes to the folder ``job_logs``, default
    the current folder); the jobs are kept at that number, and cancelled on leaving.

    Raises:
        SlurmError: dask-jobqueue is not installed, there is no ``sbatch``, or Slurm refuses the job script.
    """
    try:
        from dask.distributed import Client
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise SlurmError(f"--executor slurm needs dask-jobqueue ({exc}): pip install 'codec-evalkit[slurm]'") from None
    _restore_ctrl_c()
    with _starting_cluster():
        cluster = SLURMCluster(**worker_job_options(settings, job_logs))
    stop = threading.Event()
    rescale = threading.Thread(target=_keep_scaled, args=(cluster, settings.slurm_jobs, stop),
                               name="evalkit-slurm-rescale", daemon=True)
    try:
        _check_job(cluster.job_script())
        client = Client(cluster)
        try:
            if log_path is not None:
                client.register_plugin(_route_output_plugin(log_path,
                                                            logging.getLogger().isEnabledFor(logging.DEBUG)))
            cluster.scale(jobs=settings.slurm_jobs)
            rescale.start()
            yield client
        finally:
            stop.set()
            client.close()
    finally:
        stop.set()
        if rescale.is_alive():  # no job may be submitted while (or after) the cluster cancels its jobs
            rescale.join(timeout=60)
        cluster.close()  # scancel for every job it submitted
