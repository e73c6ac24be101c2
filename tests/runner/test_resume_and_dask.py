"""Crash safety (SIGKILL at any moment loses and duplicates nothing) and the Dask executor."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import yaml

from evalkit import audio
from evalkit.runner import run_evaluation, validate_config
from tests.conftest import DEMO
from tests.runner.conftest import make_config


@pytest.fixture
def larger_dataset(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    clip = audio.load(DEMO / "speech_slt_stella.flac", channel_policy="mono")
    for i in range(10):
        x = clip.samples[:, int(i * 0.4 * 44100): int((i * 0.4 + 0.5) * 44100)]
        sf.write(folder / f"s{i:02d}.wav", audio.resample(x, 44100, 24000).T, 24000, subtype="FLOAT")
    return folder


def _results(store):
    db = sqlite3.connect(store)
    rows = db.execute("SELECT result_key, value, reason FROM results ORDER BY result_key").fetchall()
    units = db.execute("SELECT COUNT(*), COUNT(DISTINCT unit_key) FROM units").fetchone()
    return rows, units


@pytest.mark.parametrize("kill_after_units", [1, 6])
def test_sigkill_at_any_moment_loses_and_duplicates_nothing(larger_dataset, tmp_path, kill_after_units):
    codecs = [{"spec": "encodec-24khz?bandwidth=3&weights=random"}, {"spec": "lowpass?cutoff_hz=7000"}]
    raw = make_config(larger_dataset, tmp_path / "killed", codecs=codecs, metrics=["si_sdr", "stoi"])
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "run", str(cfg)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / "killed" / "results.sqlite"
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if store.exists():
            try:
                done = sqlite3.connect(store).execute("SELECT COUNT(*) FROM units").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= kill_after_units:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert kill_after_units <= done < 20, "the kill must land mid-run"

    config, specs = validate_config(raw, tmp_path)
    resumed = run_evaluation(config, specs, progress=False)
    assert resumed.units_run == 20 - done  # finished units were kept, not recomputed

    clean_raw = make_config(larger_dataset, tmp_path / "clean", codecs=codecs, metrics=["si_sdr", "stoi"])
    clean_config, _ = validate_config(clean_raw, tmp_path)
    clean = run_evaluation(clean_config, specs, progress=False)
    got, units = _results(resumed.store)
    want, _ = _results(clean.store)
    assert units == (20, 20) and len(got) == 40 == len({r[0] for r in got})
    assert [r[0] for r in got] == [r[0] for r in want]
    assert [r[2] for r in got] == [r[2] for r in want]  # same reasons where NaN
    np.testing.assert_allclose([np.nan if r[1] is None else r[1] for r in got],
                               [np.nan if r[1] is None else r[1] for r in want], rtol=1e-9)
    db = sqlite3.connect(resumed.store)
    referenced = [p for row in db.execute("SELECT decoded_path, codes_path FROM units") for p in row if p]
    assert referenced and all(p.endswith((".wav", ".npy")) and os.path.isfile(p) for p in referenced)
    for decoded, item in db.execute("SELECT decoded_path, item_path FROM units"):
        assert sf.info(decoded).frames == sf.info(item).frames  # complete files, input length restored


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
