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


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_dead_worker_marks_its_item_error_and_the_run_goes_on(larger_dataset, tmp_path, sig):  # noqa: F811
    raw = make_config(larger_dataset, tmp_path / "out", codecs=CODECS, metrics=METRICS, workers=2)
    proc, _ = _start_run(raw, tmp_path)
    store = tmp_path / "out" / "results.sqlite"
    victim = _pool_workers(_wait_for_units(proc, store, 1, workers=3))[0]  # 2 workers + the resource tracker
    os.kill(victim, sig)  # mid-item: a task takes far longer than the hand-over between two tasks
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr
    db = sqlite3.connect(store)
    rows = db.execute("SELECT item_id, status, reason FROM units").fetchall()
    assert len(rows) == 20  # every unit of the plan has its row: the run went on with a new worker
    dead = [r for r in rows if r[1] == "error"]
    assert dead and {r[1] for r in rows} == {"ok", "error"}
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
