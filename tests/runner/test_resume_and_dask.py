"""Crash safety (SIGKILL at any moment loses and duplicates nothing) and the Dask executor."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from evalkit import audio
from evalkit.runner import run_evaluation, validate_config
from tests.conftest import DEMO
from tests.runner.conftest import make_config

pytestmark = pytest.mark.slow  # Dask clusters and killed subprocess runs

CODECS = [{"spec": "encodec-24khz?bandwidth=3&weights=random"}, {"spec": "lowpass?cutoff_hz=7000"}]
METRICS = ["si_sdr", "stoi"]


@pytest.fixture(scope="module")
def larger_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    clip = audio.load(DEMO / "speech_slt_stella.flac", channel_policy="mono")
    for i in range(10):
        x = clip.samples[:, int(i * 0.4 * 44100): int((i * 0.4 + 0.5) * 44100)]
        sf.write(folder / f"s{i:02d}.wav", audio.resample(x, 44100, 24000).T, 24000, subtype="FLOAT")
    return folder


@pytest.fixture(scope="module")
def clean_results(larger_dataset, tmp_path_factory):
    """The store of an uninterrupted run of CODECS × METRICS over ``larger_dataset`` (computed once)."""
    out = tmp_path_factory.mktemp("clean")
    config, specs = validate_config(make_config(larger_dataset, out / "run", codecs=CODECS, metrics=METRICS), out)
    return _results(run_evaluation(config, specs, progress=False).store)


def _results(store):
    db = sqlite3.connect(store)
    rows = db.execute("SELECT result_key, value, reason FROM results ORDER BY result_key").fetchall()
    units = db.execute("SELECT COUNT(*), COUNT(DISTINCT unit_key) FROM units").fetchone()
    return rows, units


def _units(store) -> int:
    try:
        return sqlite3.connect(store).execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def _children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _start_run(raw, tmp_path, **popen):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "run", str(cfg)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)
    return proc, cfg


def _wait_for_units(proc, store, at_least: int, workers: int = 1) -> set[int]:
    """Wait until ``at_least`` units are stored (and the workers are up); returns the run's child processes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _units(store) >= at_least and (workers == 1 or len(_children(proc.pid)) >= workers):
            return _children(proc.pid)
        time.sleep(0.02)
    raise AssertionError(f"run ended or stalled before {at_least} units (rc {proc.poll()})")


# The first unit is committed alone, later ones in batches (up to 1 s of work): killing right after the first
# commit is the one moment that lands mid-run on a fast machine as on a loaded one.
@pytest.mark.parametrize("kill_after_units,workers", [(1, 1), (1, 2)])
def test_sigkill_at_any_moment_loses_and_duplicates_nothing(larger_dataset, clean_results, tmp_path,
                                                            kill_after_units, workers):
    raw = make_config(larger_dataset, tmp_path / "killed", codecs=CODECS, metrics=METRICS, workers=workers)
    proc, _ = _start_run(raw, tmp_path)
    store = tmp_path / "killed" / "results.sqlite"
    children = _wait_for_units(proc, store, kill_after_units, workers)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _units(store)  # counted after the process has exited: nothing more can commit
    assert kill_after_units <= done < 20, "the kill must land mid-run"
    deadline = time.monotonic() + 15
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(children), "workers outlived their killed parent"

    config, specs = validate_config(raw, tmp_path)
    resumed = run_evaluation(config.model_copy(update={"workers": 1}), specs, progress=False)
    assert resumed.units_run == 20 - done  # finished units were kept, not recomputed
    got, units = _results(resumed.store)
    want, _ = clean_results
    assert units == (20, 20) and len(got) == 40 == len({r[0] for r in got})
    assert [r[0] for r in got] == [r[0] for r in want]
    assert [r[2] for r in got] == [r[2] for r in want]  # same reasons where NaN
    np.testing.assert_allclose([np.nan if r[1] is None else r[1] for r in got],
                               [np.nan if r[1] is None else r[1] for r in want], rtol=1e-3, atol=1e-4)
    db = sqlite3.connect(resumed.store)
    referenced = [p for row in db.execute("SELECT decoded_path, codes_path FROM units") for p in row if p]
    out = tmp_path / "killed"
    assert referenced and all(p.endswith((".wav", ".npy")) and (out / p).is_file() for p in referenced)
    for decoded, item in db.execute("SELECT decoded_path, item_path FROM units"):
        assert sf.info(out / decoded).frames == sf.info(item).frames  # complete files, input length restored


def test_ctrl_c_stops_workers_and_exits_130_and_a_second_run_is_refused(larger_dataset, tmp_path, capsys):
    from evalkit.cli import main
    from evalkit.runner.run import output_lock

    # 50 units, so the run is still going when the second run and Ctrl-C arrive (10 finished too early)
    codecs = [{"spec": f"encodec-24khz?bandwidth={b}&weights=random"} for b in (1.5, 3, 6, 12, 24)]
    raw = make_config(larger_dataset, tmp_path / "out", codecs=codecs, metrics=["si_sdr"], workers=2)
    proc, cfg = _start_run(raw, tmp_path, start_new_session=True)
    store = tmp_path / "out" / "results.sqlite"
    children = _wait_for_units(proc, store, 1, workers=2)

    assert main(["run", str(cfg)]) == 2  # the output folder is in use
    err = capsys.readouterr().err
    assert f"output folder is in use by another evalkit run (pid {proc.pid}: " in err and len(err.splitlines()) == 1

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    _, stderr = proc.communicate(timeout=60)
    done = _units(store)
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert stderr.rstrip().splitlines()[-1] == f"interrupted after {done} units; rerun to resume" and done < 50
    deadline = time.monotonic() + 10
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(children)
    with output_lock(tmp_path / "out"):  # released
        pass


def test_dask_local_cluster_writes_the_same_store(dataset, tmp_path):
    pytest.importorskip("dask.distributed")
    raw_local = make_config(dataset, tmp_path / "local")
    raw_dask = make_config(dataset, tmp_path / "dask")
    local_cfg, specs = validate_config(raw_local, tmp_path)
    dask_cfg, _ = validate_config(raw_dask, tmp_path)
    local = run_evaluation(local_cfg, specs, progress=False)
    distributed = run_evaluation(dask_cfg, specs, executor="dask", progress=False)
    assert distributed.units_run == local.units_run == 12
    got, _ = _results(distributed.store)
    want, _ = _results(local.store)
    assert [r[0] for r in got] == [r[0] for r in want]
    np.testing.assert_allclose([np.nan if r[1] is None else r[1] for r in got],
                               [np.nan if r[1] is None else r[1] for r in want], rtol=1e-3, atol=1e-4)
    again = run_evaluation(dask_cfg, specs, executor="dask", progress=False)
    assert again.units_run == 0
