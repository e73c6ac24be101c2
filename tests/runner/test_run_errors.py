"""Disk full, a corrupt store, non-UTF-8 files and read-only run folders: one line, exit 2, nothing lost."""

import errno
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from evalkit.cli import main
from tests.runner.conftest import export_values, make_config, run_raw

CODECS = [{"spec": "lowpass?cutoff_hz=3500"}, {"spec": "lowpass?cutoff_hz=7000"}]


def _config(small_dataset, tmp_path, name="out", **extra) -> Path:
    raw = make_config(small_dataset, tmp_path / name, codecs=CODECS, metrics=["si_sdr"], **extra)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _stored_units(run_dir: Path) -> int:
    return sqlite3.connect(run_dir / "results.sqlite").execute("SELECT COUNT(*) FROM units").fetchone()[0]


def _errors(capsys) -> list[str]:
    """The lines of stderr besides the progress bar."""
    return [line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("units:")]


def _fail_after(n: int, exc: BaseException):
    """A replacement that lets ``n`` calls through to ``real`` and raises ``exc`` from then on."""
    calls = []

    def wrap(real):
        def fake(*args, **kwargs):
            calls.append(1)
            if len(calls) > n:
                raise exc
            return real(*args, **kwargs)
        return fake
    return wrap


def _store_class():
    from evalkit.runner.store import Store

    return Store


def _audio_module():
    from evalkit import audio

    return audio


def _run_module():
    from evalkit.runner import run

    return run


@pytest.mark.parametrize("owner,name,error", [
    (_store_class, "write_units", lambda: sqlite3.OperationalError("database or disk is full")),
    (_run_module, "_fsync", lambda: OSError(errno.ENOSPC, "No space left on device")),
    (_run_module, "_make_durable", lambda: OSError(errno.ENOSPC, "No space left on device")),
    (_audio_module, "write_float_wav", lambda: OSError(errno.ENOSPC, "No space left on device")),
])
def test_disk_full_is_one_line_exit_2_and_loses_nothing(small_dataset, tmp_path, monkeypatch, capsys, owner, name,
                                                        error):
    clean = run_raw(make_config(small_dataset, tmp_path / "clean", codecs=CODECS, metrics=["si_sdr"]), tmp_path)
    target = owner()
    # the first unit is committed alone, the others in one batch: the store's second transaction fails
    # (the first unit, the corrupt item's failure, writes no file: a durability call fails in the second batch)
    passes = {"write_float_wav": 2, "write_units": 1}.get(name, 0)
    monkeypatch.setattr(target, name, _fail_after(passes, error())(getattr(target, name)))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 0))
    config = _config(small_dataset, tmp_path)
    assert main(["run", str(config)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "cannot write (the disk is full (no space left on device))" in err[0], err
    assert "every unit stored so far is kept" in err[0]
    out = tmp_path / "out"
    kept = _stored_units(out)
    assert kept >= 1  # what committed before the disk filled up is still there
    assert not list((out / "cache").rglob(".*.tmp"))  # no partial file left behind
    monkeypatch.undo()
    assert main(["run", str(config)]) == 0  # space again: the rerun resumes
    capsys.readouterr()
    resumed = run_raw(make_config(small_dataset, out, codecs=CODECS, metrics=["si_sdr"]), tmp_path)
    assert resumed.units_run == 0 and export_values(resumed) == export_values(clean)


def test_exports_on_a_full_disk_are_one_line_and_a_rerun_writes_them(small_dataset, tmp_path, monkeypatch, capsys):
    import pandas as pd

    config = _config(small_dataset, tmp_path)
    full = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_csv", _fail_after(0, full)(pd.DataFrame.to_csv))
    assert main(["run", str(config)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "the disk is full" in err[0]
    units = _stored_units(tmp_path / "out")
    monkeypatch.undo()
    assert main(["run", str(config)]) == 0
    assert "0 run" in capsys.readouterr().out and _stored_units(tmp_path / "out") == units


def test_a_corrupt_store_is_one_line_naming_it(small_dataset, tmp_path, capsys):
    config = _config(small_dataset, tmp_path)
    assert main(["run", str(config)]) == 0
    store = tmp_path / "out" / "results.sqlite"
    store.write_bytes(b"this is not a database" * 100)
    capsys.readouterr()
    assert main(["run", str(config)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and f"{store}: not a readable evalkit store" in err[0] and "--fresh" in err[0]
    assert main(["report", str(tmp_path / "out"), "-o", str(tmp_path / "r.html")]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and str(store) in err[0]
    assert main(["run", str(config), "--fresh"]) == 0  # starting over is the way out


def test_non_utf8_config_and_manifest_are_one_line_naming_the_file(small_dataset, tmp_path, capsys):
    config = _config(small_dataset, tmp_path)
    config.write_bytes(config.read_bytes() + "# résumé\n".encode("latin-1"))
    assert main(["run", str(config)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and str(config) in err[0] and "not UTF-8 text (byte 0xe9" in err[0]

    manifest = tmp_path / "items.csv"
    manifest.write_bytes("file,category,text\nitem0.wav,speech,caf\xe9\n".encode("latin-1"))
    raw = make_config(small_dataset, tmp_path / "out2", codecs=CODECS, metrics=["si_sdr"])
    raw["dataset"] = {"manifest": str(manifest)}
    config.write_text(yaml.safe_dump(raw))
    assert main(["run", str(config)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and f"dataset.manifest: {manifest}: not UTF-8 text" in err[0]

    (small_dataset / "MANIFEST.csv").write_bytes("file,category\nitem0.wav,caf\xe9\n".encode("latin-1"))
    config = _config(small_dataset, tmp_path, name="out3")
    assert main(["run", str(config)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "MANIFEST.csv: not UTF-8 text" in err[0]


@pytest.fixture
def read_only(tmp_path):
    """``read_only(folder)`` makes ``folder`` read-only for this process: a read-only bind mount as root (who
    may write anywhere else), permissions otherwise. Skips where neither can be done."""
    mounts = []

    def make(folder: Path) -> Path:
        import os

        if os.geteuid() != 0:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(0o555 if path.is_dir() else 0o444)
            return folder
        view = folder.with_name(folder.name + "-ro")
        view.mkdir()
        for args in (["mount", "--bind", str(folder), str(view)], ["mount", "-o", "remount,bind,ro", str(view)]):
            if subprocess.run(args, capture_output=True).returncode != 0:
                pytest.skip("cannot make a read-only folder here (no bind mounts)")
            mounts.append(view)
        return view

    yield make
    for view in dict.fromkeys(reversed(mounts)):
        subprocess.run(["umount", str(view)], capture_output=True)


@pytest.mark.slow  # reports, plots and prepares a listening test from a run
def test_a_read_only_run_folder_can_be_reported_plotted_and_listened_to(tmp_path, read_only, capsys):
    from tests.listening.conftest import make_run

    run = read_only(make_run(tmp_path / "made"))
    with pytest.raises(OSError):
        (run / "probe").write_text("x")  # really read-only
    assert main(["report", str(run), "-o", str(tmp_path / "report.html")]) == 0
    assert (tmp_path / "report.html").stat().st_size > 1000
    assert main(["plot", "metric", str(run), "--metric", "si_sdr", "-o", str(tmp_path / "si_sdr.svg")]) == 0
    assert main(["listen", "prepare", "--run", str(run), "--design", "ab", "--items", "2",
                 "--out", str(tmp_path / "test")]) == 0
    assert not list(run.glob("results.sqlite-*"))  # nothing was (or could be) written beside the store


def test_read_store_in_a_read_only_folder_sees_rows_still_in_the_wal(tmp_path, read_only):
    from evalkit.runner.store import read_store

    folder = tmp_path / "run"
    folder.mkdir()
    writer = sqlite3.connect(folder / "results.sqlite")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # as a run killed before any checkpoint
    writer.execute("CREATE TABLE t (x)")
    writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    writer.commit()
    copy = tmp_path / "killed"
    shutil.copytree(folder, copy)  # the files as a SIGKILL leaves them: rows in -wal only
    writer.close()
    assert (copy / "results.sqlite-wal").stat().st_size > 0
    view = read_only(copy)
    with read_store(view / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 5
    with read_store(read_only(folder) / "results.sqlite") as db:  # closed cleanly: no -wal, opened immutable
        assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 5
    assert sorted(p.name for p in copy.iterdir()) == ["results.sqlite", "results.sqlite-shm", "results.sqlite-wal"]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted at ``tmp_path / "disk"`` (root only); skips where it cannot be mounted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode(errors='replace').strip()})")
    yield disk
    from evalkit.logs import log_to_file

    log_to_file(tmp_path / "after.log")  # closes the handler of the run.log on the tmpfs
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk: Path, leave_kib: int) -> Path:
    """Fill ``disk`` up to ``leave_kib`` KiB free with one file; returns it."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    size = max(0, shutil.disk_usage(disk).free - leave_kib * 1024)
    with open(filler, "wb") as fh:
        try:
            fh.write(b"\0" * size)
            fh.flush()
        except OSError:  # full a little before: that is the point
            pass
    return filler


def test_a_healthy_store_on_a_really_full_disk_is_called_a_full_disk(small_dataset, tmp_path, small_disk, capsys):
    """Rerunning a finished run with a few KiB free: SQLite says "database or disk is full" or, failing to grow
    its -shm/-wal files, "disk I/O error"; neither is a damaged store, and --fresh is never suggested."""
    out = small_disk / "run"
    config = _config(small_dataset, tmp_path)
    config.write_text(config.read_text().replace(str(tmp_path / "out"), str(out)))
    assert main(["run", str(config)]) == 0
    units = _stored_units(out)
    failed = []
    for leave_kib in range(0, 41, 4):
        filler = _fill(small_disk, leave_kib)
        capsys.readouterr()
        code = main(["run", str(config)])
        err = _errors(capsys)
        filler.unlink()
        if code == 0:
            continue
        failed.append(leave_kib)
        assert code == 2 and len(err) == 1, (leave_kib, err)
        assert "the disk is full" in err[0] and str(out) in err[0], (leave_kib, err)
        assert "--fresh" not in err[0] and "not a readable" not in err[0], (leave_kib, err)
    assert failed, "the disk never filled up"
    capsys.readouterr()
    assert main(["run", str(config)]) == 0  # space again: the store was fine all along
    assert "0 run" in capsys.readouterr().out and _stored_units(out) == units


@pytest.mark.parametrize("free_bytes,says", [
    (4096, "the disk is full (no space left on device, 4 KiB free): cannot use the store results.sqlite (disk I/O "
           "error); the store passes SQLite's integrity check"),
    (10 << 30, "results.sqlite: cannot use the store (disk I/O error); the store passes SQLite's integrity check"),
])
def test_an_io_error_on_a_healthy_store_never_suggests_fresh(small_dataset, tmp_path, monkeypatch, capsys,
                                                             free_bytes, says):
    """Where no small file system can be mounted: SQLite failing to open a healthy store (as it does when it
    cannot grow its -shm file on a full disk) names the disk or the error, not a damaged store."""
    config = _config(small_dataset, tmp_path)
    assert main(["run", str(config)]) == 0
    store_class = _store_class()
    real_init = store_class.__init__

    def failing_init(self, path):
        real_init(self, path)
        self.db.close()
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store_class, "__init__", failing_init)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, free_bytes))
    capsys.readouterr()
    assert main(["run", str(config)]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and says in err[0] and "--fresh" not in err[0], err
    assert str(tmp_path / "out") in err[0]
