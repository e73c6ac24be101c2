"""The Dask executor when the scheduler is not there, goes away mid-run, or the user presses Ctrl-C: one line,
a non-zero exit code, and a store that is untouched or resumable."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from evalkit.cli import main
from evalkit.runner import run_evaluation, validate_config
from tests.runner.conftest import make_config
from tests.runner.test_resume_and_dask import (  # noqa: F401 - fixtures
    CODECS,
    METRICS,
    _alive,
    _results,
    _units,
    _wait_for_units,
    clean_results,
    larger_dataset,
)

pytestmark = pytest.mark.slow  # Dask schedulers and subprocess runs

pytest.importorskip("dask.distributed")
DASK = Path(sys.executable).with_name("dask")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("units:")]


@pytest.fixture
def finished_run(tmp_path):
    """A finished run of two 0.25 s items through a low-pass anchor; returns (config file, output folder)."""
    import soundfile as sf

    data = tmp_path / "data"
    data.mkdir()
    x = np.random.default_rng(5).uniform(-0.3, 0.3, (2, 4000)).astype(np.float32)
    for i in range(2):
        sf.write(data / f"x{i}.wav", x[i], 16000, subtype="FLOAT")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(make_config(data, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}],
                                                 metrics=["si_sdr"])))
    assert main(["run", str(config)]) == 0
    return config, tmp_path / "out"


def _files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "run.log"}


@pytest.mark.parametrize("address,says", [
    (None, "cannot connect to a Dask scheduler within 1 s"),  # nothing listening on the port: refused
    ("tcp://192.0.2.1:8786", "cannot connect to a Dask scheduler within 1 s"),  # unreachable (TEST-NET-1)
    ("nonsense:::", "not a Dask scheduler address"),
    ("tcp://127.0.0.1:notaport", "not a Dask scheduler address"),
])
def test_no_scheduler_is_one_line_exit_2_and_fresh_deletes_nothing(finished_run, capsys, address, says):
    config, out = finished_run
    address = address or f"tcp://127.0.0.1:{_free_port()}"
    before = _files(out)
    capsys.readouterr()
    code = main(["run", str(config), "--executor", "dask", "--scheduler", address, "--connect-timeout", "1",
                 "--fresh"])
    err = _error_lines(capsys.readouterr().err)
    assert code == 2
    assert len(err) == 1 and f"--scheduler {address}: {says}" in err[0], err
    assert _files(out) == before  # connected (or not) before the store was touched: --fresh deleted nothing


def test_connect_timeout_must_be_positive(finished_run, capsys):
    config, _ = finished_run
    assert main(["run", str(config), "--executor", "dask", "--connect-timeout", "0"]) == 2
    assert "--connect-timeout: expected seconds > 0, got 0" in capsys.readouterr().err


@pytest.fixture
def dask_cluster(tmp_path):
    """A real ``dask scheduler`` and one ``dask worker`` (one thread) on a free port; yields (address,
    scheduler process). Both are stopped afterwards."""
    if not DASK.is_file():
        pytest.skip(f"no dask command beside {sys.executable}")
    address = f"tcp://127.0.0.1:{_free_port()}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                  "--no-dashboard"], **quiet)
    worker = subprocess.Popen([str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1",
                               "--no-dashboard"], **quiet)
    try:
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address, scheduler
    finally:
        for proc in (worker, scheduler):
            proc.kill()
            proc.wait()


def test_a_scheduler_lost_mid_run_is_one_line_and_the_store_resumes(larger_dataset, clean_results,  # noqa: F811
                                                                   tmp_path, dask_cluster):
    address, scheduler = dask_cluster
    raw = make_config(larger_dataset, tmp_path / "out", codecs=CODECS, metrics=METRICS)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "run", str(cfg), "--executor", "dask",
                             "--scheduler", address], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    store = tmp_path / "out" / "results.sqlite"
    _wait_for_units(proc, store, 1)
    scheduler.kill()
    _, stderr = proc.communicate(timeout=120)
    done = _units(store)
    assert done < 20, "the scheduler must die mid-run"
    err = _error_lines(stderr)
    assert proc.returncode == 2 and "Traceback" not in stderr
    assert err == [f"evalkit: error: lost the Dask scheduler at {address} during the run "
                   f"(scheduler-connection-lost); every unit stored so far is kept ({done} from this run): rerun "
                   f"to resume"], err

    config, specs = validate_config(raw, tmp_path)
    resumed = run_evaluation(config.model_copy(update={"workers": 1}), specs, progress=False)
    assert resumed.units_run == 20 - done
    got, units = _results(resumed.store)
    want, _ = clean_results
    assert units == (20, 20) and [r[0] for r in got] == [r[0] for r in want]
    assert [r[2] for r in got] == [r[2] for r in want]
    np.testing.assert_allclose([np.nan if r[1] is None else r[1] for r in got],
                               [np.nan if r[1] is None else r[1] for r in want], rtol=1e-3, atol=1e-4)


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (the LocalCluster's worker processes are grandchildren at most)."""
    found, frontier = set(), {pid}
    while frontier:
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in frontier and fields[0] != "Z":
                children.add(int(stat.parent.name))
        frontier = children - found
        found |= children
    return found


def test_ctrl_c_under_dask_is_one_line_exit_130(larger_dataset, tmp_path):  # noqa: F811
    codecs = [{"spec": f"encodec-24khz?bandwidth={b}&weights=random"} for b in (1.5, 3, 6, 12, 24)]
    raw = make_config(larger_dataset, tmp_path / "out", codecs=codecs, metrics=["si_sdr"], workers=2)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "run", str(cfg), "--executor", "dask"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    store = tmp_path / "out" / "results.sqlite"
    _wait_for_units(proc, store, 1)
    workers = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group, workers too
    _, stderr = proc.communicate(timeout=120)
    done = _units(store)
    assert proc.returncode == 130 and done < 50
    assert _error_lines(stderr) == [f"interrupted after {done} units; rerun to resume"], stderr[-3000:]
    deadline = time.monotonic() + 15
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(workers)  # the LocalCluster's worker processes are gone too
