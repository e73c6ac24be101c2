"""Metric plugins: the docs' example metric (docs/guides/add-a-metric.md) through `evalkit run`, entry points, bad
plugins."""

import hashlib
import html
import json
import math
import os
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from evalkit.cli import main
from evalkit.metrics import PAIR_METRICS, get_metric
from tests.test_readme_api import code_blocks, section

GAINS = {"item0.wav": 0.25, "item1.wav": 0.5}  # decoded = gain × item: exact in float32


@pytest.fixture
def clean_metrics():
    """Plugin metrics registered by a test are removed after it (entry points are read again when needed)."""
    yield PAIR_METRICS
    for metric in PAIR_METRICS.plugins():
        PAIR_METRICS.unregister(metric.info.name)
    PAIR_METRICS.refresh()


@pytest.fixture
def readme_metric(tmp_path):
    """The example metric plugin of docs/guides/add-a-metric.md, exactly as written there."""
    [source] = code_blocks(section("How to add a metric"), "python")
    path = tmp_path / "plugin" / "peak_level.py"
    path.parent.mkdir()
    path.write_text(source)
    return path


@pytest.fixture
def scaled_items(tmp_path, rng):
    """Two 0.3 s 16 kHz noise items and a decoded folder holding each item scaled by its gain in GAINS."""
    data, decoded = tmp_path / "items", tmp_path / "decoded"
    data.mkdir()
    decoded.mkdir()
    for name, gain in GAINS.items():
        x = np.clip(0.2 * rng.standard_normal(4800), -0.9, 0.9).astype(np.float32)
        sf.write(data / name, x, 16000, subtype="FLOAT")
        sf.write(decoded / name, gain * x, 16000, subtype="FLOAT")
    return data, decoded


def _visible_text(page: str) -> str:
    """An HTML page's text without scripts, styles and tags, whitespace collapsed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _results(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "results.csv")


def test_the_readme_metric_runs_through_evalkit_run_with_hand_computed_values(clean_metrics, readme_metric,
                                                                             scaled_items, tmp_path, capsys):
    data, decoded = scaled_items
    raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "plugins": ["plugin/peak_level.py"],
           "codecs": [{"decoded": {"folder": str(decoded), "label": "scaled"}}],
           "metrics": ["peak_level_diff", "si_sdr"], "output": "out", "workers": 0}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "run.yaml")]) == 0
    sha = hashlib.sha256(readme_metric.read_bytes()).hexdigest()
    rows = _results(tmp_path / "out")
    peak = rows[rows["metric"] == "peak_level_diff"].set_index("item_id")
    # |20 log10(g · max|x| / max|x|)| = -20 log10(g): 12.0412 dB at g = 1/4, 6.0206 dB at g = 1/2 (float32 math)
    assert peak["value"].to_dict() == pytest.approx({k: -20 * math.log10(g) for k, g in GAINS.items()}, abs=1e-5)
    assert set(peak["unit"]) == {"dB"} and set(peak["library"]) == {"peak_level.py"}
    assert set(peak["library_version"]) == {f"sha256:{sha}"} and set(peak["metric_version"].astype(str)) == {"1"}
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("metric")
    assert summary.loc["peak_level_diff", "mean"] == pytest.approx(-10 * math.log10(1 / 8), abs=1e-5)
    assert not summary.loc["peak_level_diff", "higher_is_better"]
    provenance = json.loads((tmp_path / "out" / "run.json").read_text())
    assert provenance["metric_plugins"] == [{"name": "peak_level_diff", "version": "1",
                                             "source": f"file {readme_metric}", "library": "peak_level.py",
                                             "code_identity": f"sha256:{sha}", "dependencies": []}]
    # `evalkit score` gives the same value for one pair
    capsys.readouterr()
    assert main(["score", str(data / "item0.wav"), str(decoded / "item0.wav"), "--plugin", str(readme_metric),
                 "--metric", "peak_level_diff", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"peak_level_diff": pytest.approx(-20 * math.log10(0.25))}
    # listed like evalkit's own, with its source
    assert main(["metrics", "list", "--plugin", str(readme_metric)]) == 0
    out = capsys.readouterr().out
    block = out[out.index("peak_level_diff:"):]
    assert 'shown as "Peak level difference (dB) ↓"' in block and f"source: file {readme_metric}" in block
    assert main(["metrics", "list", "--json"]) == 0
    [listed] = [m for m in json.loads(capsys.readouterr().out) if m["name"] == "peak_level_diff"]
    assert listed["library_version"] == f"sha256:{sha}" and listed["higher_is_better"] is False
    # the report of the run, in a registry without the plugin, loads it again from the run's config
    PAIR_METRICS.unregister("peak_level_diff")
    assert main(["report", str(tmp_path / "out"), "-o", str(tmp_path / "report.html"), "--examples", "0"]) == 0
    text = _visible_text((tmp_path / "report.html").read_text())
    assert "Peak level difference (dB) ↓" in text and "Peak level difference ↓ dB" in text
    assert f"{-10 * math.log10(1 / 8):.3f} ★" in text  # the mean, starred as the best (lowest) value


def test_an_edited_plugin_file_is_rescored_and_an_unchanged_one_is_not(clean_metrics, readme_metric, scaled_items,
                                                                       tmp_path):
    data, decoded = scaled_items
    raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "plugins": [str(readme_metric)],
           "codecs": [{"decoded": {"folder": str(decoded), "label": "scaled"}}],
           "metrics": ["peak_level_diff"], "output": str(tmp_path / "out"), "workers": 0}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "run.yaml")]) == 0
    assert main(["run", str(tmp_path / "run.yaml")]) == 0

    def stored_keys():
        with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
            return {r[0] for r in db.execute("SELECT result_key FROM results WHERE metric = 'peak_level_diff'")}

    assert len(stored_keys()) == 2  # the second run reused both values
    readme_metric.write_text(readme_metric.read_text() + "# edited\n")
    assert main(["run", str(tmp_path / "run.yaml")]) == 0
    assert len(stored_keys()) == 4  # new code, new keys: both pairs scored again
    sha = hashlib.sha256(readme_metric.read_bytes()).hexdigest()
    assert set(_results(tmp_path / "out")["library_version"]) == {f"sha256:{sha}"}


RMS_MODULE = '''
import numpy as np
from evalkit import MetricPlugin


def rms_dbfs(degraded, rate):
    return 10 * np.log10(np.mean(degraded.astype(np.float64) ** 2))


RMS = MetricPlugin(name="rms_dbfs", kind="no-reference", unit="dBFS", higher_is_better=True, version="2",
                   function=rms_dbfs, sample_rates=(16000, 8000), dependencies=("numpy",))
'''


def install_metric_entry_point(root, monkeypatch, *, module_source=RMS_MODULE, target="rms_metric:RMS",
                               dist="evalkit-rms", version="0.3.0"):
    """A distribution ``dist`` declaring ``rms = target`` in the group ``evalkit.metrics``, importable from
    ``root`` (a ``*.dist-info`` folder next to the module)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{target.partition(':')[0]}.py").write_text(module_source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[evalkit.metrics]\nrms = {target}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    PAIR_METRICS.refresh()


def test_an_entry_point_metric_is_found_by_name_and_scores_the_reference_too(clean_metrics, scaled_items, tmp_path,
                                                                              monkeypatch, capsys):
    install_metric_entry_point(tmp_path / "site", monkeypatch)
    import numpy as np_  # the installed version is part of the library version

    info = get_metric("rms_dbfs").info
    assert (info.library, info.version, info.rates) == ("evalkit-rms", "2", (16000, 8000))
    assert info.library_version() == f"0.3.0 (numpy {np_.__version__})"
    assert PAIR_METRICS.source("rms_dbfs") == "entry point rms (evalkit-rms 0.3.0)"
    data, decoded = scaled_items
    raw = {"dataset": {"folder": str(data), "glob": "*.wav"},
           "codecs": [{"decoded": {"folder": str(decoded), "label": "scaled"}}],
           "metrics": ["rms_dbfs"], "output": str(tmp_path / "out"), "workers": 0}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "run.yaml")]) == 0
    rows = _results(tmp_path / "out")
    for name, gain in GAINS.items():
        x = sf.read(data / name, dtype="float32")[0].astype(np.float64)
        reference_db = 10 * np.log10(np.mean(x**2))
        row = rows[(rows["item_id"] == name) & rows["codec_spec"].str.startswith("decoded")].iloc[0]
        assert row["value"] == pytest.approx(reference_db + 20 * math.log10(gain), abs=1e-5)
        assert row["reference_value"] == pytest.approx(reference_db, abs=1e-5)  # scored on the item itself
        assert row["delta"] == pytest.approx(20 * math.log10(gain), abs=1e-5)
    assert set(rows["library_version"]) == {info.library_version()}


BAD_FILES = {
    "missing.py": ("from evalkit import MetricPlugin\nMETRICS = [MetricPlugin(name='x', kind='reference', unit='dB',"
                   " higher_is_better=True, version='1')]\n",
                   "import failed: TypeError: MetricPlugin.__init__() missing 1 required positional argument: "
                   "'function'"),
    "builtin.py": ("from evalkit import MetricPlugin\nMETRICS = MetricPlugin('si_sdr', 'reference', 'dB', True, '1',"
                   " abs)\n", "metric 'si_sdr' is already provided by evalkit"),
    "corpus.py": ("from evalkit import MetricPlugin\nMETRICS = [MetricPlugin('codebook_usage', 'reference', 'bits',"
                  " True, '1', abs)]\n", "metric 'codebook_usage' is already provided by evalkit (a corpus metric)"),
    "fields.py": ("from evalkit import MetricPlugin\nMETRICS = [MetricPlugin('My-Metric', 'intrusive', 'dB', 1, '',"
                  " 3, sample_rates=(0,), channels='stereo')]\n",
                  "metric 'My-Metric': name 'My-Metric' is not usable (lower-case letters, digits and '_', starting "
                  "with a letter); kind: expected one of 'reference', 'no-reference', got 'intrusive'; "
                  "higher_is_better: expected True or False, got 1; version: expected a non-empty string, got ''; "
                  "function: expected a callable, got int; sample_rates: expected None or a tuple of positive "
                  "integer rates in Hz, got (0,); channels: expected 'mono' or 'per_channel', got 'stereo'"),
    "codes.py": ("from evalkit import MetricPlugin\nMETRICS = [MetricPlugin('usage', 'codes', 'bits', True, '1', "
                 "abs)]\n", "metric 'usage': kind 'codes' is not supported for plugin metrics"),
    "imports.py": ("import no_such_module_xyz\nMETRICS = []\n",
                   "import failed: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    "number.py": ("METRICS = 3\n", "METRICS: expected a MetricPlugin, a list of them or a callable returning them, "
                                   "got int"),
    "empty.py": ("METRICS = []\n", "METRICS: defines no metric (an empty list)"),
    "raises.py": ("def METRICS():\n    raise RuntimeError('no model')\n",
                  "METRICS: calling it failed: RuntimeError: no model"),
    "nothing.py": ("X = 1\n", "defines no FAMILIES (codec families"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_metric_plugin_file_is_one_line_and_exit_2(clean_metrics, tmp_path, capsys, name):
    source, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(source)
    assert main(["metrics", "list", "--plugin", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"evalkit: error: {path}: {message}"), err
    assert "si_sdr" in PAIR_METRICS and PAIR_METRICS.plugins() == []


def test_two_plugin_files_cannot_share_a_name_and_a_bad_one_in_a_run_config_is_one_line(
        clean_metrics, readme_metric, scaled_items, tmp_path, capsys):
    twin = tmp_path / "twin.py"
    twin.write_text(readme_metric.read_text())
    data, decoded = scaled_items
    raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "plugins": [str(readme_metric), "twin.py"],
           "codecs": [{"decoded": {"folder": str(decoded), "label": "scaled"}}],
           "metrics": ["peak_level_diff"], "output": str(tmp_path / "out"), "workers": 0}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"evalkit: error: {tmp_path / 'run.yaml'}: plugins.1: {twin}: metric 'peak_level_diff' is "
                   f"already provided by file {readme_metric}"]
    assert not (tmp_path / "out" / "results.sqlite").exists()


def test_a_broken_entry_point_is_one_line_and_leaves_builtin_metrics_usable(clean_metrics, scaled_items, tmp_path,
                                                                            monkeypatch, capsys):
    install_metric_entry_point(tmp_path / "site", monkeypatch, module_source="import no_such_module_xyz\n",
                               target="rms_broken:RMS")
    assert main(["metrics", "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evalkit: error: metric plugin entry point rms (evalkit-rms 0.3.0) = rms_broken:RMS: import "
                   "failed: ModuleNotFoundError: No module named 'no_such_module_xyz'"]
    data, decoded = scaled_items
    assert main(["score", str(data / "item0.wav"), str(decoded / "item0.wav"), "--metric", "si_sdr", "--json"]) == 0
    assert main(["score", str(data / "item0.wav"), str(decoded / "item0.wav"), "--metric", "rms_dbfs"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("evalkit: error: metric plugin entry point")


@pytest.mark.slow  # starts a process pool
def test_pool_workers_import_the_plugin_file_and_score_its_metric(clean_metrics, readme_metric, scaled_items,
                                                                 tmp_path):
    data, decoded = scaled_items
    raw = {"dataset": {"folder": str(data), "glob": "*.wav"}, "plugins": [str(readme_metric)],
           "codecs": [{"decoded": {"folder": str(decoded), "label": "scaled"}}],
           "metrics": ["peak_level_diff"], "output": str(tmp_path / "out"), "workers": 2}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "run.yaml")]) == 0
    values = _results(tmp_path / "out").set_index("item_id")["value"].to_dict()
    assert values == pytest.approx({k: -20 * math.log10(g) for k, g in GAINS.items()}, abs=1e-5)


def test_the_readme_metric_fails_as_nan_with_its_reason_and_warms_up_at_its_rate(clean_metrics, readme_metric):
    from evalkit.metrics import Reference, load_metric_plugins, score_pair
    from evalkit.metrics.plugins import MetricPlugin, metric_of
    from evalkit.metrics.warmup import warm_up

    load_metric_plugins([readme_metric])
    x = np.full((1, 1600), 0.5, dtype=np.float32)
    [result] = score_pair(Reference(x, 16000), np.zeros_like(x), 16000, [get_metric("peak_level_diff")])
    assert math.isnan(result.value) and result.reason == "silent signal: its peak level in dB is undefined"
    calls = []
    plugin = MetricPlugin("rate_probe", "reference", "", True, "1", lambda r, d, rate: calls.append(rate) or 0.0,
                          sample_rates=(24000, 16000))
    warm_up([metric_of(plugin, "test", "test", "test", "0")])
    assert calls == [24000]
