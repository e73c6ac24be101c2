"""Plugins from Python: ``evalkit.build_codec``, ``evalkit.run`` and ``evalkit.score`` take ``plugins=[...]``, a
file or an importable module name, exactly as a run config's ``plugins:`` list (which takes module names too)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import soundfile as sf

import evalkit
from evalkit import audio
from evalkit.plugin_files import PluginError
from tests.plugin_fixtures import toy_source, write_plugin_file
from tests.runner.conftest import export_values, make_config

METRIC_SOURCE = '''
import numpy as np
from evalkit import MetricPlugin

def _gain_db(reference, degraded, rate):
    return 20 * np.log10(np.sqrt(np.mean(degraded ** 2)) / np.sqrt(np.mean(reference ** 2)))

METRICS = [MetricPlugin(name="{name}", kind="reference", unit="dB", higher_is_better=True, version="1",
                        function=_gain_db, display_name="Gain")]
'''


@pytest.fixture
def clean_metrics():
    """Plugin metrics registered by a test are removed after it."""
    from evalkit.metrics import PAIR_METRICS

    yield PAIR_METRICS
    for metric in PAIR_METRICS.plugins():
        PAIR_METRICS.unregister(metric.info.name)
    PAIR_METRICS.refresh()


@pytest.fixture
def plugin_module(tmp_path, monkeypatch, clean_families):
    """A module ``toy_mod_codec`` (the example toy codec as family ``toy-mod``, display name ``Toy module``),
    importable by name here and in spawned workers."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "toy_mod_codec.py").write_text(toy_source("toy-mod", "Toy module"))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", str(root))
    return root / "toy_mod_codec.py"


def _tone(rate: int = 16_000, seconds: float = 0.25) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.4 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1300 * t)).astype(np.float32)[None]


def test_build_codec_loads_a_plugin_module_by_name_like_the_same_code_as_a_file(plugin_module, tmp_path):
    from evalkit.codecs import FAMILIES

    with pytest.raises(KeyError):
        FAMILIES["toy-mod"]
    by_module = evalkit.build_codec("toy-mod?bits=4", "cpu", plugins=["toy_mod_codec"])
    source = FAMILIES.source("toy-mod")
    assert source.describe() == f"module toy_mod_codec ({plugin_module.resolve()})"
    # the module's code identity goes into every unit key of its variants: the SHA-256 of its file
    assert source.identity() == f"plugin-module-sha256={hashlib.sha256(plugin_module.read_bytes()).hexdigest()}"

    file = write_plugin_file(tmp_path / "files", family="toy-f")  # the same toy codec, as a plugin file
    by_file = evalkit.build_codec("toy-f?bits=4", "cpu", plugins=[file])
    x = _tone()
    got = by_module.reconstruct(x, 16_000).audio
    np.testing.assert_array_equal(got, by_file.reconstruct(x, 16_000).audio)
    assert got.shape == x.shape and not np.array_equal(got, x)  # it really coded the tone (4-bit mu-law)


def test_plugin_errors_name_the_module_or_file(clean_families, tmp_path, monkeypatch):
    with pytest.raises(PluginError, match=r"^plugin module no_such_plugin_mod: no such module on sys.path"):
        evalkit.build_codec("toy?bits=3", plugins=["no_such_plugin_mod"])
    (tmp_path / "broken_plugin_mod.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "empty_plugin_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"^plugin module broken_plugin_mod: import failed: ModuleNotFoundError: "
                                          r"No module named 'no_such_dependency_xyz'$"):
        evalkit.build_codec("toy?bits=3", plugins=["broken_plugin_mod"])
    with pytest.raises(PluginError, match=r"^plugin module empty_plugin_mod: defines no FAMILIES"):
        evalkit.build_codec("toy?bits=3", plugins=["empty_plugin_mod"])
    with pytest.raises(PluginError, match=r"missing_codec\.py: plugin file not found$"):
        evalkit.build_codec("toy?bits=3", plugins=["missing_codec.py"])  # a .py name is always a file


@pytest.mark.slow  # runs plugin codecs
@pytest.mark.parametrize("given", ["argument", "config"])
def test_run_takes_plugin_modules_and_labels_variants_with_the_display_name(plugin_module, small_dataset, tmp_path,
                                                                           given):
    from evalkit.codecs import FAMILIES
    from evalkit.metrics import Reference, get_metrics, score_pair

    raw = make_config(small_dataset, tmp_path / "out", codecs=[{"spec": "toy-mod?bits=3"}], metrics=["si_sdr"],
                      workers=1)
    if given == "config":
        raw["plugins"] = ["toy_mod_codec"]
    run = evalkit.run(raw, base_dir=tmp_path, plugins=["toy_mod_codec"] if given == "argument" else [])
    assert json.loads((run.run_dir / "run.json").read_text())["config"]["plugins"] == ["toy_mod_codec"]
    rows = [r for r in export_values(run.report) if r[0] != "corrupt.wav"]
    assert len(rows) == 2 and all(r[1] == "toy-mod?bits=3" and r[4] is None for r in rows), rows
    codec = FAMILIES["toy-mod"].factory(evalkit.CodecSpec("toy-mod", {"bits": 3}), "cpu")
    for item, _, _, value, _ in rows:  # the same value as the codec and metric computed here, without the runner
        clip = audio.load(small_dataset / item)
        [expected] = score_pair(Reference(clip.samples, clip.sample_rate),
                                codec.reconstruct(clip.samples, clip.sample_rate).audio, clip.sample_rate,
                                get_metrics(["si_sdr"]))
        assert value == pytest.approx(expected.value, abs=1e-6)
    assert run.labels["toy-mod?bits=3"] == "Toy module 24 kbps"  # 8 kHz x 3 bits, from the stored record
    FAMILIES.unregister("toy-mod")  # a later process: the label comes from the run's variant record
    assert evalkit.load_run(run.run_dir).labels["toy-mod?bits=3"] == "Toy module 24 kbps"


def test_score_takes_a_metric_plugin_module(clean_metrics, tmp_path, monkeypatch):
    (tmp_path / "gain_metric_mod.py").write_text(METRIC_SOURCE.format(name="gain_mod_db"))
    monkeypatch.syspath_prepend(str(tmp_path))
    x = _tone()
    scores = evalkit.score(x, 0.5 * x, 16_000, metrics="gain_mod_db", plugins="gain_metric_mod")
    assert scores["gain_mod_db"] == pytest.approx(20 * math.log10(0.5), abs=1e-4)  # -6.02 dB
    from evalkit.metrics import PAIR_METRICS

    info = PAIR_METRICS["gain_mod_db"].info
    assert info.library == "gain_metric_mod"
    assert info.code_identity == f"sha256:{hashlib.sha256((tmp_path / 'gain_metric_mod.py').read_bytes()).hexdigest()}"


def test_a_config_file_lists_a_module_and_a_relative_file_side_by_side(plugin_module, small_dataset, tmp_path):
    import yaml

    from evalkit.runner import load_config

    write_plugin_file(tmp_path / "cfg", family="toy-rel", name="rel_codec.py")
    raw = make_config(small_dataset, tmp_path / "out", codecs=[{"spec": "toy-mod?bits=2"}, {"spec": "toy-rel?bits=2"}],
                      metrics=["si_sdr"], plugins=["toy_mod_codec", "rel_codec.py"])
    (tmp_path / "cfg" / "run.yaml").write_text(yaml.safe_dump(raw))
    config, specs = load_config(tmp_path / "cfg" / "run.yaml")
    assert config.plugins == ["toy_mod_codec", str((tmp_path / "cfg" / "rel_codec.py").resolve())]
    assert [s.family for s in specs] == ["toy-mod", "toy-rel"]


def test_cli_score_plugin_option_takes_a_module(clean_metrics, tmp_path, monkeypatch, capsys):
    from evalkit.cli import main

    (tmp_path / "gain_cli_mod.py").write_text(METRIC_SOURCE.format(name="gain_cli_db"))
    monkeypatch.syspath_prepend(str(tmp_path))
    x = _tone()[0]
    sf.write(tmp_path / "ref.wav", x, 16_000, subtype="FLOAT")
    sf.write(tmp_path / "deg.wav", 0.25 * x, 16_000, subtype="FLOAT")
    assert main(["score", str(tmp_path / "ref.wav"), str(tmp_path / "deg.wav"), "--metric", "gain_cli_db",
                 "--plugin", "gain_cli_mod", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gain_cli_db"] == pytest.approx(20 * math.log10(0.25), abs=1e-4)


@pytest.mark.slow  # runs plugin codecs
def test_listen_prepare_labels_a_plugin_condition_with_its_display_name(plugin_module, tmp_path):
    from evalkit.codecs import FAMILIES
    from evalkit.listening.model import Design
    from evalkit.listening.prepare.design import PrepareOptions, prepare_test

    items = tmp_path / "items"
    items.mkdir()
    for i in range(2):  # 0.5 s: long enough for the stimuli's BS.1770 loudness normalisation
        sf.write(items / f"item{i}.wav", _tone(seconds=0.5)[0] * (0.5 + 0.3 * i), 16_000, subtype="FLOAT")
    raw = make_config(items, tmp_path / "out", codecs=[{"spec": "toy-mod?bits=3"}, {"spec": "toy-mod?bits=5"}],
                      metrics=["si_sdr"], workers=1)
    run = evalkit.run(raw, base_dir=tmp_path, plugins=["toy_mod_codec"])
    FAMILIES.unregister("toy-mod")  # as `evalkit listen prepare` in a later process, which loads no plugin
    definition = prepare_test(run.run_dir, tmp_path / "test", PrepareOptions(Design.AB, listeners=2))
    assert definition.labels["toy-mod?bits=3"] == "Toy module 24 kbps"
    assert definition.labels["toy-mod?bits=5"] == "Toy module 40 kbps"
