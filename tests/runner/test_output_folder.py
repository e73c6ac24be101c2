"""The output folder: never the dataset, its parent, the root, the home folder or a folder of the user's own
files; ``--fresh`` deletes only what evalkit wrote."""

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from evalkit.cli import main
from tests.runner.conftest import make_config

CODECS = [{"spec": "lowpass?cutoff_hz=3500"}]


@pytest.fixture
def user_data(tmp_path):
    """A dataset folder of two 0.25 s items that also holds the user's own ``cache/``, ``summary.txt`` and
    ``results.csv`` (the names evalkit's exports use)."""
    folder = tmp_path / "data"
    (folder / "cache").mkdir(parents=True)
    x = np.random.default_rng(3).uniform(-0.3, 0.3, (2, 4000)).astype(np.float32)
    for i in range(2):
        sf.write(folder / f"x{i}.wav", x[i], 16000, subtype="FLOAT")
    (folder / "cache" / "notes.txt").write_text("my notes")
    (folder / "summary.txt").write_text("my summary")
    (folder / "results.csv").write_text("my,results\n")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_config(path: Path, dataset: Path, output: str) -> Path:
    raw = make_config(dataset, output, codecs=CODECS, metrics=["si_sdr"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("units:")]


@pytest.mark.parametrize("where", ["dataset", "parent", "config folder"])
def test_output_overlapping_the_dataset_is_refused_before_anything_is_deleted(user_data, tmp_path, capsys,
                                                                             where):
    # `output: ''` is the config's own folder (refused: the config file is a file evalkit did not write)
    output = {"dataset": str(user_data), "parent": str(tmp_path), "config folder": ""}[where]
    config = _write_config(tmp_path / "configs" / "run.yaml", user_data, output)
    before = _snapshot(tmp_path)
    assert main(["run", str(config), "--fresh"]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1, err
    shown = {"dataset": user_data, "parent": tmp_path, "config folder": config.parent}[where]
    assert f"output: {shown} " in err[0]
    named = config if where == "config folder" else user_data
    assert str(named) in err[0]  # the second path: the dataset folder, or the user's file that is there
    assert _snapshot(tmp_path) == before  # nothing deleted, overwritten or added (no lock file, no run.log)


def test_the_file_system_root_is_refused(user_data, tmp_path):
    """Checked by the guard alone: a run that got past it would write into / (as main's code does)."""
    from evalkit.runner.config import ConfigError, validate_config
    from evalkit.runner.output import check_output

    config, _ = validate_config(make_config(user_data, "/", codecs=CODECS, metrics=["si_sdr"]), tmp_path)
    with pytest.raises(ConfigError, match=f"^output: / contains the dataset folder {user_data}; "):
        check_output(config)
    manifest = tmp_path / "items.csv"
    manifest.write_text(f"file\n{user_data / 'x0.wav'}\n")
    dataset = config.dataset.model_copy(update={"folder": None, "manifest": manifest})
    with pytest.raises(ConfigError, match=f"^output: / contains the dataset manifest {manifest}; "):
        check_output(config.model_copy(update={"dataset": dataset}))


def test_the_home_folder_is_refused(user_data, tmp_path, capsys, offline_and_private_caches):
    home = offline_and_private_caches  # $HOME of the tests
    config = _write_config(tmp_path / "run.yaml", user_data, str(home))
    assert main(["run", str(config)]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and f"output: {home.resolve()} is the home folder {home.resolve()}" in err[0], err
    assert not (home / ".evalkit.lock").exists()


def test_output_holding_the_manifest_or_one_of_its_files_is_refused(user_data, tmp_path, capsys):
    lists = tmp_path / "lists"
    lists.mkdir()
    manifest = lists / "items.csv"
    manifest.write_text(f"file,category\n{user_data / 'x0.wav'},music\n{user_data / 'x1.wav'},music\n")
    for output, named in [(lists, manifest), (user_data, user_data / "x0.wav")]:
        raw = make_config(user_data, output, codecs=CODECS, metrics=["si_sdr"])
        raw["dataset"] = {"manifest": str(manifest)}
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(raw))
        before = _snapshot(tmp_path)
        assert main(["run", str(config), "--fresh"]) == 2
        err = _error_lines(capsys)
        assert len(err) == 1 and f"output: {output} contains {'the dataset manifest ' * (output == lists)}" \
            f"{named}" in err[0], err
        assert _snapshot(tmp_path) == before


def test_a_folder_of_the_users_files_is_refused_even_without_fresh(user_data, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("chapter 1")
    config = _write_config(tmp_path / "run.yaml", user_data, str(mine))
    assert main(["run", str(config)]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and f"output: {mine} already holds files evalkit did not write (e.g. " \
        f"{mine / 'thesis.tex'})" in err[0], err
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]  # no lock file, no run.log written there


def test_new_empty_and_evalkit_folders_are_used(user_data, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for output in ("new/run", "empty"):
        config = _write_config(tmp_path / f"{output.replace('/', '_')}.yaml", user_data, str(tmp_path / output))
        assert main(["run", str(config)]) == 0
        assert main(["run", str(config)]) == 0  # its own marker: a rerun resumes
    assert "0 run" in capsys.readouterr().out


def test_fresh_deletes_only_what_evalkit_wrote(user_data, tmp_path, capsys):
    out = tmp_path / "out"
    config = _write_config(tmp_path / "run.yaml", user_data, str(out))
    assert main(["run", str(config)]) == 0
    assert main(["report", str(out)]) == 0  # report.html, also evalkit's
    (out / "my_notes.md").write_text("keep me")
    (out / "cache" / "decoded" / "my_take.wav").write_bytes(b"keep me too")
    (out / "plots").mkdir()
    (out / "plots" / "figure.svg").write_text("<svg/>")
    capsys.readouterr()
    assert main(["run", str(config), "--fresh"]) == 0
    assert "2 planned, 2 run" in capsys.readouterr().out  # started over
    assert (out / "my_notes.md").read_text() == "keep me"
    assert (out / "cache" / "decoded" / "my_take.wav").read_bytes() == b"keep me too"
    assert (out / "plots" / "figure.svg").read_text() == "<svg/>"
    assert not (out / "report.html").exists()  # it described the discarded results
    assert sqlite3.connect(out / "results.sqlite").execute("SELECT COUNT(*) FROM units").fetchone()[0] == 2


def test_discard_leaves_nothing_a_run_writes_but_its_log_and_lock(user_data, tmp_path, capsys):
    """Every file a run writes is on ``--fresh``'s list: a new export must be added there."""
    from evalkit.runner.output import discard_run_files

    out = tmp_path / "out"
    config = _write_config(tmp_path / "run.yaml", user_data, str(out))
    assert main(["run", str(config)]) == 0
    assert main(["report", str(out)]) == 0
    discard_run_files(out)
    assert sorted(p.name for p in out.iterdir()) == [".evalkit.lock", "run.log"]
