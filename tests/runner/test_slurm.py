"""The Slurm executor against a real one-node Slurm cluster started by ``scripts/slurm_cluster.sh`` (installed
through apt where this is root; skipped with the script's reason where it cannot start)."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evalkit.runner import run_evaluation, validate_config
from tests.runner.conftest import make_config
from tests.runner.test_dask_failures import _error_lines
from tests.runner.test_native_crash import crashing_plugin
from tests.runner.test_resume_and_dask import (  # noqa: F401 - fixtures
    CODECS,
    METRICS,
    _results,
    _start_run,
    _units,
    _wait_for_units,
    clean_results,
    larger_dataset,
)

pytest.importorskip("dask_jobqueue")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm_cluster.sh"
SLURM = {"kind": "slurm", "slurm_jobs": 2, "slurm_memory": "1GB", "slurm_walltime": "00:20:00"}


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running one-node Slurm cluster (``SLURM_CONF`` set for this process and its children); stopped after."""
    folder = tmp_path_factory.mktemp("slurm")
    try:
        done = subprocess.run(["bash", str(SCRIPT), "start", str(folder)], capture_output=True, text=True,
                              timeout=900)
    except subprocess.TimeoutExpired:
        pytest.skip("Slurm cannot start here: scripts/slurm_cluster.sh start took over 15 min")
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        pytest.skip(f"Slurm cannot start here: {lines[-1] if lines else f'exit code {done.returncode}'}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    yield folder
    subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=120)
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


def _jobs() -> list[str]:
    """Ids of the Slurm jobs queued or running."""
    done = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return done.stdout.split()


def _no_jobs_left(within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while _jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _jobs()


def _same_values(got, want) -> None:
    assert [r[0] for r in got] == [r[0] for r in want] and [r[2] for r in got] == [r[2] for r in want]
    np.testing.assert_allclose([np.nan if r[1] is None else r[1] for r in got],
                               [np.nan if r[1] is None else r[1] for r in want], rtol=1e-3, atol=1e-4)


@pytest.mark.slow  # a fake Slurm cluster running worker processes
def test_a_slurm_run_gives_the_values_of_a_local_run_and_leaves_no_jobs(slurm, larger_dataset, clean_results,  # noqa: F811
                                                                         tmp_path):
    raw = make_config(larger_dataset, tmp_path / "out", codecs=CODECS, metrics=METRICS, executor=SLURM)
    config, specs = validate_config(raw, tmp_path)
    report = run_evaluation(config, specs, progress=False)
    assert report.units_run == 20 and report.units_failed == 0
    got, units = _results(report.store)
    want, _ = clean_results
    assert units == (20, 20)
    _same_values(got, want)
    assert _no_jobs_left()
    assert any((tmp_path / "out" / "slurm-logs").iterdir())  # the jobs' own output, in the run folder


@pytest.mark.slow  # a fake Slurm cluster running worker processes
def test_a_cancelled_slurm_job_loses_nothing_and_the_run_finishes(slurm, larger_dataset, clean_results,  # noqa: F811
                                                                  tmp_path):
    raw = make_config(larger_dataset, tmp_path / "out", codecs=CODECS, metrics=METRICS, executor=SLURM)
    proc, _ = _start_run(raw, tmp_path)
    store = tmp_path / "out" / "results.sqlite"
    _wait_for_units(proc, store, 1)
    victim = _jobs()[0]
    subprocess.run(["scancel", victim], check=True)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    got, units = _results(store)
    want, _ = clean_results
    assert units == (20, 20)
    _same_values(got, want)
    assert _no_jobs_left()


@pytest.mark.slow  # a one-node Slurm cluster running worker processes
def test_ctrl_c_is_one_line_exit_130_cancels_every_slurm_job_and_the_store_resumes(slurm, larger_dataset,  # noqa: F811
                                                                                  tmp_path):
    codecs = [{"spec": f"encodec-24khz?bandwidth={b}&weights=random"} for b in (1.5, 3, 6, 12, 24)]
    raw = make_config(larger_dataset, tmp_path / "out", codecs=codecs, metrics=["si_sdr"], executor=SLURM)
    proc, _ = _start_run(raw, tmp_path, start_new_session=True)
    store = tmp_path / "out" / "results.sqlite"
    _wait_for_units(proc, store, 1)
    assert _jobs()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    _, stderr = proc.communicate(timeout=120)
    done = _units(store)  # counted after the process has exited: nothing more can commit
    assert proc.returncode == 130, stderr[-2000:]
    assert 1 <= done < 50, "the interrupt must land mid-run"
    assert _error_lines(stderr) == [f"interrupted after {done} units; rerun to resume"], stderr[-3000:]
    assert _no_jobs_left()

    # Resumed locally on the items that have stored units (cheap): those units are kept, the others run.
    started = tmp_path / "started"
    started.mkdir()
    for (path,) in sqlite3.connect(store).execute("SELECT DISTINCT item_path FROM units"):
        shutil.copy(path, started)
    items = len(list(started.iterdir()))
    config, specs = validate_config({**raw, "dataset": {"folder": str(started), "glob": "*.wav"}, "workers": 0,
                                     "executor": {"kind": "local"}}, tmp_path)
    resumed = run_evaluation(config, specs, progress=False)
    assert resumed.units_run == 5 * items - done and resumed.units_failed == 0
    assert _results(resumed.store)[1] == (5 * items, 5 * items)


@pytest.mark.slow  # a fake Slurm cluster running worker processes
def test_a_unit_that_keeps_killing_its_worker_fails_and_the_run_goes_on(slurm, tmp_path):
    import dask
    import soundfile as sf

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    for i, peak in enumerate([0.2, 0.95, 0.2]):  # item1 crashes the codec, on every worker it is given to
        x = rng.uniform(-1, 1, 4000)
        sf.write(data / f"item{i}.wav", (peak * x / np.abs(x).max()).astype(np.float32), 16000, subtype="FLOAT")
    raw = make_config(data, tmp_path / "out", codecs=[{"spec": "toy-crash?bits=4"}], metrics=["si_sdr"],
                      plugins=[str(crashing_plugin(tmp_path))], executor=SLURM)
    config, specs = validate_config(raw, tmp_path)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):  # the scheduler runs in this process
        report = run_evaluation(config, specs, progress=False)
    db = sqlite3.connect(report.store)
    units = {item: (status, reason) for item, status, reason in db.execute("SELECT item_id, status, reason FROM units")}
    assert {item: s for item, (s, _) in units.items()} == {"item0.wav": "ok", "item1.wav": "error", "item2.wav": "ok"}
    assert "KilledWorker" in units["item1.wav"][1] or "Dask workers died" in units["item1.wav"][1]
    assert report.units_failed == 1
    assert _no_jobs_left()


@pytest.mark.slow  # a fresh interpreter importing dask_jobqueue
def test_ctrl_c_stays_a_keyboard_interrupt_under_the_slurm_executor(tmp_path):
    """Importing dask-jobqueue sets SIGINT to ``sys.exit()`` (exit code 0, as if the run had finished): a fresh
    interpreter imports it, enters the Slurm executor (which fails at once here: no sbatch on PATH) and reports
    the SIGINT handler left behind."""
    probe = (
        "import signal, dask_jobqueue\n"
        "from evalkit.runner.config import ExecutorConfig\n"
        "from evalkit.runner.slurm import SlurmError, slurm_client\n"
        "assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler\n"
        "try:\n"
        "    with slurm_client(ExecutorConfig(kind='slurm'), job_logs='.'):\n"
        "        pass\n"
        "except SlurmError as exc:\n"
        "    print(exc)\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    env = {**os.environ, "PATH": str(tmp_path)}  # no sbatch
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == ["--executor slurm: no sbatch on PATH (run evalkit on a Slurm login node)",
                                             "True"]


def test_no_sbatch_is_one_line(tmp_path, monkeypatch, larger_dataset):  # noqa: F811
    from evalkit.runner.slurm import SlurmError

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    raw = make_config(larger_dataset, tmp_path / "out", codecs=CODECS, metrics=METRICS, executor=SLURM)
    config, specs = validate_config(raw, tmp_path)
    with pytest.raises(SlurmError, match="no sbatch on PATH"):
        run_evaluation(config, specs, progress=False)
    assert not (tmp_path / "out" / "results.sqlite").exists()
