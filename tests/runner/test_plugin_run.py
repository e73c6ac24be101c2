"""Plugin codecs in a run: a plugin file (`plugins:`) and an entry point, in the local pool and on Dask workers."""

import pytest

from evalkit import audio
from evalkit.codecs import build_codec
from evalkit.metrics import Reference, get_metrics, score_pair
from tests.plugin_fixtures import install_entry_point, write_plugin_file
from tests.runner.conftest import export_values, make_config, run_raw

pytestmark = pytest.mark.slow  # plugin codecs run on local and Dask workers


def _expected(dataset, spec: str) -> dict[str, float]:
    """SI-SDR of each good item through the codec, computed in this process without the runner."""
    values = {}
    for path in sorted(dataset.glob("item*.wav")):
        clip = audio.load(path)
        rec = build_codec(spec, device="cpu").reconstruct(clip.samples, clip.sample_rate)
        [result] = score_pair(Reference(clip.samples, clip.sample_rate), rec.audio, clip.sample_rate,
                              get_metrics(["si_sdr"]))
        values[path.name] = result.value
    return values


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_plugin_file_and_entry_point_codecs_run_on_workers(clean_families, small_dataset, tmp_path, monkeypatch,
                                                           executor):
    if executor == "dask":
        pytest.importorskip("dask.distributed")
    install_entry_point(tmp_path / "site", monkeypatch)  # toy-ep, found by the workers through PYTHONPATH
    plugin = write_plugin_file(tmp_path / "plugins")  # toy-file, imported by the workers from `plugins:`
    raw = make_config(small_dataset, tmp_path / "out", codecs=[{"spec": "toy-file?bits=3"},
                                                               {"spec": "toy-ep?bits=5"}],
                      metrics=["si_sdr"], workers=2, plugins=[str(plugin)])
    report = run_raw(raw, tmp_path, executor=executor)
    rows = export_values(report)
    ok = [r for r in rows if r[0] != "corrupt.wav"]
    assert len(ok) == 4 and all(r[4] is None for r in ok), rows
    for spec in ("toy-file?bits=3", "toy-ep?bits=5"):
        got = {r[0]: r[3] for r in ok if r[1] == spec}
        assert got == pytest.approx(_expected(small_dataset, spec), abs=1e-6)


def test_a_broken_plugin_in_the_config_is_one_line_and_exit_2(clean_families, small_dataset, tmp_path, capsys):
    import yaml

    from evalkit.cli import main

    bad = tmp_path / "bad_codec.py"
    bad.write_text("import torch.nonexistent_module\n")
    raw = make_config(small_dataset, tmp_path / "out", codecs=[{"spec": "lowpass"}], plugins=["bad_codec.py"])
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"evalkit: error: {tmp_path / 'run.yaml'}: plugins.0: {bad}: import failed: ModuleNotFoundError: "
                   f"No module named 'torch.nonexistent_module'"]
    assert not (tmp_path / "out" / "results.sqlite").exists()
