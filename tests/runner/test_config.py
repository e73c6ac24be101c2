import pytest
import yaml

from evalkit.cli import main
from evalkit.runner import ConfigError, load_config, validate_config
from evalkit.runner.config import DECODE_FIELDS, PLAN_FIELDS, SCORE_FIELDS, DatasetConfig, RunConfig
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
    assert config.workers == 0 and config.dataset.folder == dataset


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
    (lambda r: r.update(workers=-1), "workers: Input should be greater than or equal to 0"),
    (lambda r: r.update(colour="red"), "colour: unknown field"),
    (lambda r: r.pop("output"), "output: Field required"),
    (lambda r: r["dataset"].update(folder="/no/such/folder"), "dataset.folder: /no/such/folder is not a folder"),
    (lambda r: r["dataset"].update(manifest="m.csv"), "dataset: give exactly one of 'folder'"),
    (lambda r: r.update(codecs=[{"spec": "lowpass", "family": "lowpass"}]), "codecs.0: give exactly one of"),
    (lambda r: r.update(codecs=[]), "codecs: List should have at least 1 item"),
    (lambda r: r["dataset"].update(segment_seconds=-1), "dataset.segment_seconds: Input should be greater than 0"),
    (lambda r: r.update(exclude_metrics=["si_sdr", "wr"]), "exclude_metrics.1: unknown metric 'wr'"),
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
    assert err.strip().splitlines() == [f"evalkit: error: {path}: metrics.0: unknown metric 'nope'; valid: "
                                        f"{', '.join(__import__('evalkit.metrics').metrics.PAIR_METRICS)}"]
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml not found" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("dataset: [unclosed")
    assert main(["run", str(tmp_path / "broken.yaml")]) == 2
    assert "(yaml)" in capsys.readouterr().err


def test_every_setting_is_classified_for_the_keys():
    """A new config field must be declared as changing decoded audio, metric values, or neither."""
    fields = {f"dataset.{name}" for name in DatasetConfig.model_fields} | set(RunConfig.model_fields) - {"dataset"}
    declared = [*DECODE_FIELDS, *SCORE_FIELDS, *PLAN_FIELDS]
    assert sorted(declared) == sorted(fields)


def _write(tmp_path, raw, name="run.yaml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow  # a codec run
def test_paths_resolve_against_the_config_folder(dataset, tmp_path, monkeypatch):
    from evalkit.codecs import build_codec

    weights = tmp_path / "conf" / "w" / "mine.th"
    weights.parent.mkdir(parents=True)
    import torch

    torch.save(build_codec("encodec-24khz?weights=random", device="cpu").build_loaded_model().state_dict(), weights)
    raw = {"dataset": {"folder": "../data", "glob": "*.wav"}, "output": "out", "workers": 1, "metrics": ["si_sdr"],
           "codecs": [{"spec": "encodec-24khz?weights=w/mine.th"},
                      {"family": "klt", "params": {"base": "encodec-24khz", "weights": "w/mine.th",
                                                   "estimator": "usage", "calibration": "../data"}}]}
    path = _write(tmp_path / "conf", raw)
    (tmp_path / "x" / "y").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "x" / "y")  # where "../data" is not the dataset
    config, specs = load_config(path)
    assert config.dataset.folder.resolve() == dataset.resolve()
    assert config.output.resolve() == (tmp_path / "conf" / "out").resolve()
    assert specs[0].params["weights"] == str(weights) and specs[1].params["calibration"] == str(tmp_path / "conf"
                                                                                                 / ".." / "data")


def test_explicit_weights_path_that_does_not_exist_is_a_one_line_error(dataset, tmp_path, capsys):
    from evalkit.cli import main

    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "dac-16khz?weights=nowhere/dac.pth"}])
    assert main(["run", str(_write(tmp_path, raw))]) == 2
    err = capsys.readouterr().err
    missing = tmp_path / "nowhere" / "dac.pth"
    assert err.strip() == (f"evalkit: error: {tmp_path / 'run.yaml'}: codecs.0: dac-16khz?n_codebooks=12&seed=0&"
                           f"weights={missing}: weights file {missing} does not exist")
    assert not (tmp_path / "out" / "results.sqlite").exists()


@pytest.mark.parametrize("device,message", [
    ("tpu", "device: unknown device 'tpu'; expected auto, cpu, cuda or cuda:N"),
    ("cuda", "device: cuda requested but no CUDA GPU is available (use auto or cpu)"),
])
def test_bad_device_is_a_one_line_error(dataset, tmp_path, capsys, device, message):
    import torch

    from evalkit.cli import main

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    raw = make_config(dataset, tmp_path / "out", device=device)
    assert main(["run", str(_write(tmp_path, raw))]) == 2
    assert capsys.readouterr().err.strip() == f"evalkit: error: {tmp_path / 'run.yaml'}: {message}"


def test_unwritable_output_is_a_one_line_error(dataset, tmp_path, capsys):
    from evalkit.cli import main

    (tmp_path / "afile").write_text("in the way")
    raw = make_config(dataset, tmp_path / "afile" / "out")
    assert main(["run", str(_write(tmp_path, raw))]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"evalkit: error: {tmp_path / 'afile' / 'out'}: output folder is not writable (Not a directory)"


def test_lowpass_cutoff_at_or_above_nyquist_is_an_error_before_any_unit_runs(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from evalkit.cli import main

    (tmp_path / "data").mkdir()
    x = np.random.default_rng(0).uniform(-0.3, 0.3, 8000).astype(np.float32)
    sf.write(tmp_path / "data" / "wide.wav", x, 48000)
    sf.write(tmp_path / "data" / "narrow.wav", x, 8000)
    raw = make_config(tmp_path / "data", tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"},
                                                                   {"spec": "lowpass?cutoff_hz=7000"}])
    assert main(["run", str(_write(tmp_path, raw))]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("evalkit: error: codecs: lowpass?cutoff_hz=7000: cut-off 7000 Hz is at or above the Nyquist "
                   "frequency of 1 item(s), e.g. narrow.wav (8000 Hz: 4000 Hz)")
    assert not (tmp_path / "out" / "results.sqlite").exists()


def test_calibration_without_usable_audio_is_a_config_error(dataset, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from evalkit.cli import main

    calibration = tmp_path / "cal"
    calibration.mkdir()
    (calibration / "broken.wav").write_bytes(b"RIFFjunk")
    sf.write(calibration / "silent.flac", np.zeros(4800, np.float32), 24000)
    raw = make_config(dataset, tmp_path / "out", codecs=[
        {"spec": "klt?base=encodec-24khz&weights=random&estimator=usage&calibration=cal"}])
    assert main(["run", str(_write(tmp_path, raw))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"evalkit: error: {tmp_path / 'run.yaml'}: codecs.0: klt: calibration folder {calibration} "
                          f"has no usable audio") and "\n" not in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_excluded_metrics_leave_the_applicable_set_and_lists(dataset, tmp_path):
    from evalkit.runner.plan import list_items
    from evalkit.runner.run import _metrics_for

    for metrics in ("applicable", ["si_sdr", "mel_distance", "stoi"]):
        raw = make_config(dataset, tmp_path / "out", metrics=metrics)
        raw["exclude_metrics"] = ["mel_distance", "stoi"]
        config, _ = validate_config(raw, tmp_path)
        item = next(iter(list_items(config.dataset)))
        names = {m.info.name for m in _metrics_for(config, item)}
        assert "si_sdr" in names and not {"mel_distance", "stoi"} & names, metrics
