"""A local pool worker that dies (killed, segmentation fault, out of memory) costs only its item's units."""

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from evalkit.runner.executors import death_reason
from tests.runner.conftest import make_config
from tests.runner.test_resume_and_dask import CODECS, METRICS, _start_run, _wait_for_units, larger_dataset  # noqa: F401

pytestmark = pytest.mark.slow  # worker processes killed mid-run


def _pool_workers(pids: set[int]) -> list[int]:
    """The pool's worker processes among a run's children (not multiprocessing's resource tracker)."""
    found = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(pid)
    return sorted(found)


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process so far (clock ticks), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))


def _running_an_item(workers: list[int]) -> int:
    """The worker that has used the most CPU: with a unit already stored, most likely the one past its start-up
    (it imports the run's codec and metric libraries before its first task: a worker killed then costs no item)."""
    return max(workers, key=_cpu_ticks)


def _run_killing_a_worker(raw: dict, tmp_path: Path, sig: signal.Signals) -> tuple[int, Path, list[tuple]]:
    """Run ``raw``, kill a busy worker with ``sig`` after the first stored unit; (its pid, the store, unit rows)."""
    proc, _ = _start_run(raw, tmp_path)
    store = Path(raw["output"]) / "results.sqlite"
    victim = _running_an_item(_pool_workers(_wait_for_units(proc, store, 1, workers=3)))  # + resource tracker
    os.kill(victim, sig)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr
    rows = sqlite3.connect(store).execute("SELECT item_id, status, reason FROM units").fetchall()
    assert len(rows) == 20  # every unit of the plan has its row: the run went on with a new worker
    return victim, store, rows


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_dead_worker_marks_its_item_error_and_the_run_goes_on(larger_dataset, tmp_path, sig):  # noqa: F811
    # A kill that lands between two of the worker's items costs none (its queued item goes to the new worker):
    # every unit is then ok, and the run is tried again in a new folder, at most three times
    for attempt in range(3):
        raw = make_config(larger_dataset, tmp_path / f"out{attempt}", codecs=CODECS, metrics=METRICS, workers=2)
        victim, store, rows = _run_killing_a_worker(raw, tmp_path, sig)
        dead = [r for r in rows if r[1] == "error"]
        if dead:
            break
        assert {r[1] for r in rows} == {"ok"}
    assert dead and {r[1] for r in rows} == {"ok", "error"}
    db = sqlite3.connect(store)
    assert len({r[0] for r in dead}) == 1  # one item: the one the killed worker was running
    assert all(f"WorkerDied: worker process {victim} died (killed by signal {sig.name}" in r[2] for r in dead)
    nan = db.execute("SELECT COUNT(*), COUNT(r.value), MIN(r.reason) FROM results r JOIN units u USING (unit_key) "
                     "WHERE u.status = 'error'").fetchone()
    assert nan[0] == 2 * len(dead) and nan[1] == 0 and sig.name in nan[2]  # NaN rows with the reason

    from evalkit.runner import run_evaluation, validate_config

    config, specs = validate_config(raw, tmp_path)
    again = run_evaluation(config.model_copy(update={"workers": 1}), specs, progress=False)
    assert again.units_run == len(dead) and again.units_failed == 0  # errors are retried, nothing else reruns


def test_death_reason_names_the_signal_or_exit_code():
    assert "killed by signal SIGSEGV: segmentation fault" in death_reason(-signal.SIGSEGV, 7)
    assert "killed by signal SIGKILL: out of memory" in death_reason(-signal.SIGKILL, 7)
    assert death_reason(1, 7) == "worker process 7 died (exit code 1) while running this item"
