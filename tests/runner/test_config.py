import pytest
import yaml

from evalkit.cli import main
from evalkit.runner import ConfigError, validate_config
from tests.runner.conftest import make_config


def _problems(raw, tmp_path):
    with pytest.raises(ConfigError) as info:
        validate_config(raw, tmp_path)
    return info.value.problems


def test_valid_config_expands_grid(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", codecs=[
        {"family": "dac-44khz", "params": {"n_codebooks": [2, 4], "weights": "random"}},
        {"spec": "lowpass"}, {"spec": "lowpass?cutoff_hz=3500"}])
    config, specs = validate_config(raw, tmp_path)
    assert [str(s) for s in specs] == ["dac-44khz?n_codebooks=2&seed=0&weights=random",
                                       "dac-44khz?n_codebooks=4&seed=0&weights=random", "lowpass?cutoff_hz=3500"]
    assert config.workers == 1 and config.dataset.folder == dataset


def test_every_problem_is_reported_with_its_field(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", codecs=[
        {"family": "encodec-24khz", "params": {"bandwidth": [5]}}, {"spec": "nocodec"},
        {"family": "dac-44khz", "params": {"bogus": [1]}}], metrics=["si_sdr", "pesq"])
    raw["dataset"]["glob"] = "*.mp3"
    problems = _problems(raw, tmp_path)
    assert problems[0].startswith("codecs.0: encodec-24khz: bandwidth=5 is not one of")
    assert problems[1].startswith("codecs.1: unknown codec family 'nocodec'")
    assert problems[2].startswith("codecs.2: dac-44khz: unknown parameter 'bogus'")
    assert problems[3].startswith("metrics.1: unknown metric 'pesq'")
    assert problems[4].startswith("dataset.glob: '*.mp3' matches no file")


@pytest.mark.parametrize("mutate,expected", [
    (lambda r: r.update(workers=0), "workers: Input should be greater than or equal to 1"),
    (lambda r: r.update(colour="red"), "colour: unknown field"),
    (lambda r: r.pop("output"), "output: Field required"),
    (lambda r: r["dataset"].update(folder="/no/such/folder"), "dataset.folder: /no/such/folder is not a folder"),
    (lambda r: r["dataset"].update(manifest="m.csv"), "dataset: give exactly one of 'folder'"),
    (lambda r: r.update(codecs=[{"spec": "lowpass", "family": "lowpass"}]), "codecs.0: give exactly one of"),
    (lambda r: r.update(codecs=[]), "codecs: List should have at least 1 item"),
    (lambda r: r["dataset"].update(segment_seconds=-1), "dataset.segment_seconds: Input should be greater than 0"),
])
def test_schema_problems(dataset, tmp_path, mutate, expected):
    raw = make_config(dataset, tmp_path / "out")
    mutate(raw)
    assert any(p.startswith(expected) for p in _problems(raw, tmp_path)), _problems(raw, tmp_path)


def test_cli_bad_config_exits_2_with_one_line_per_problem(dataset, tmp_path, capsys):
    raw = make_config(dataset, tmp_path / "out", metrics=["nope"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: 1 problem(s):" in err and "metrics.0: unknown metric 'nope'" in err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml not found" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("dataset: [unclosed")
    assert main(["run", str(tmp_path / "broken.yaml")]) == 2
    assert "(yaml)" in capsys.readouterr().err
