"""A native crash (segmentation fault) in a codec costs its item's units, not the run: with ``workers: 1`` too,
units run in a child process."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

import evalkit
from tests.plugin_fixtures import toy_source
from tests.runner.conftest import make_config

CRASH = '''
        import os, signal
        if float(wav.abs().max()) > 0.6:  # the loud test item: crash as native code would
            os.kill(os.getpid(), signal.SIGSEGV)
'''


def crashing_plugin(folder: Path, family: str = "toy-crash") -> Path:
    """The toy codec as ``family``, whose encoder segfaults on any input peaking above 0.6 (a family registered
    in this process by one test is another test's only from the same file)."""
    anchor = "        x = wav.clamp(-1.0, 1.0)\n"
    source = toy_source(family, "Toy crash")
    assert anchor in source
    source = source.replace(anchor, CRASH + anchor, 1)
    path = folder / "crash_codec.py"
    path.write_text(source)
    return path


@pytest.mark.slow  # a worker process that segfaults
def test_a_segfault_with_one_worker_fails_its_item_and_the_run_finishes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    for i, peak in enumerate([0.2, 0.95, 0.2]):  # item1 crashes the codec
        x = rng.uniform(-1, 1, 4000)
        sf.write(data / f"item{i}.wav", (peak * x / np.abs(x).max()).astype(np.float32), 16000, subtype="FLOAT")
    plugin = crashing_plugin(tmp_path)
    raw = make_config(data, tmp_path / "out", codecs=[{"spec": "toy-crash?bits=4"}], metrics=["si_sdr"],
                      plugins=[str(plugin)], workers=1)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(raw))
    src = Path(evalkit.__file__).resolve().parents[1]  # the evalkit under test
    done = subprocess.run([sys.executable, "-m", "evalkit.cli", "run", str(config)], capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    db = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    units = dict((item, (status, reason)) for item, status, reason in
                 db.execute("SELECT item_id, status, reason FROM units WHERE codec_spec LIKE 'toy-crash%'"))
    assert {item: s for item, (s, _) in units.items()} == {"item0.wav": "ok", "item1.wav": "error", "item2.wav": "ok"}
    assert "killed by signal SIGSEGV: segmentation fault" in units["item1.wav"][1]
    values = dict(db.execute("SELECT u.item_id, r.value FROM results r JOIN units u USING (unit_key) "
                             "WHERE r.metric = 'si_sdr' AND u.codec_spec LIKE 'toy-crash%'"))
    assert values["item1.wav"] is None and np.isfinite(values["item0.wav"]) and np.isfinite(values["item2.wav"])


def test_zero_workers_run_units_in_this_process(tmp_path):
    """``workers: 0`` is the in-process executor (what a patched function in this process reaches)."""
    import numpy as np
    import soundfile as sf

    from evalkit.metrics import PAIR_METRICS
    from evalkit.runner.config import load_config
    from evalkit.runner.run import run_evaluation

    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", np.random.default_rng(0).uniform(-0.3, 0.3, 8000).astype(np.float32), 16000)
    (tmp_path / "run.yaml").write_text(f"dataset: {{folder: {data}}}\ncodecs: [{{spec: 'lowpass?cutoff_hz=3000'}}]\n"
                                       f"metrics: [si_sdr]\noutput: {tmp_path / 'out'}\nworkers: 0\n")
    config, specs = load_config(tmp_path / "run.yaml")
    info = PAIR_METRICS["si_sdr"].info
    try:
        PAIR_METRICS["si_sdr"].info = info.__class__(**{**info.__dict__, "version": "in-process"})
        run_evaluation(config, specs, progress=False)
    finally:
        PAIR_METRICS["si_sdr"].info = info
    import pandas as pd

    assert set(pd.read_csv(tmp_path / "out" / "results.csv").metric_version.astype(str)) == {"in-process"}


@pytest.mark.slow  # a Dask LocalCluster whose worker segfaults
def test_under_dask_only_the_item_that_kills_its_workers_fails_not_one_queued_behind_it(tmp_path):
    """One single-threaded Dask worker, Dask allowing one death per task: the segfaulting item reaches
    ``KilledWorker``; the items queued on the same worker are not charged with its deaths (they are never sent to
    a worker before it has a free thread: ``ONE_TASK_PER_THREAD``)."""
    import dask

    from evalkit.runner import run_evaluation, validate_config

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    for i, peak in enumerate([0.95, 0.2, 0.2, 0.2]):  # item0 crashes the codec, the others queue behind it
        x = rng.uniform(-1, 1, 3000 if i == 0 else 4000)  # the shortest item is sent first
        sf.write(data / f"item{i}.wav", (peak * x / np.abs(x).max()).astype(np.float32), 16000, subtype="FLOAT")
    raw = make_config(data, tmp_path / "out", codecs=[{"spec": "toy-crash-dask?bits=4"}], metrics=["si_sdr"],
                      plugins=[str(crashing_plugin(tmp_path, "toy-crash-dask"))], workers=1,
                      executor={"kind": "dask"})
    config, specs = validate_config(raw, tmp_path)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):  # the scheduler runs in this process
        report = run_evaluation(config, specs, progress=False)
    status = dict(sqlite3.connect(report.store).execute("SELECT item_id, status FROM units"))
    assert status == {"item0.wav": "error", "item1.wav": "ok", "item2.wav": "ok", "item3.wav": "ok"}
