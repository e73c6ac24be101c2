"""What every recipe shares: a grid that cannot run is dropped with one line and the rest runs; tiny clips are
mono cuts of the first files; figures are widened for the page; tables are escaped."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from evalkit.recipes import shared
from evalkit.runner import ConfigError


def _raw(tmp_path, codecs, metrics=("si_sdr",)):
    (tmp_path / "data").mkdir(exist_ok=True)
    sf.write(tmp_path / "data" / "a.wav", np.zeros((8000, 1), np.float32) + 0.1, 16000)
    return {"dataset": {"folder": str(tmp_path / "data")}, "codecs": codecs, "metrics": list(metrics),
            "output": str(tmp_path / "run")}


def test_a_grid_that_cannot_run_is_dropped_with_one_line_and_the_others_stay(tmp_path, caplog):
    missing = tmp_path / "nowhere.pt"
    codecs = [{"family": "lowpass", "params": {"cutoff_hz": 3500}},
              {"family": "qincodec", "params": {"checkpoint": str(missing), "n_steps": [1, 2]}}]
    with caplog.at_level("WARNING", logger="evalkit.recipes.demo"):
        config, specs, dropped = shared.runnable_config(_raw(tmp_path, codecs), tmp_path, "cfg", "demo")
    assert [s.family for s in specs] == ["lowpass"]
    name = f"qincodec?checkpoint={missing}&n_steps=1|2"
    assert list(dropped) == [name] and str(missing) in dropped[name] and "not found" in dropped[name]
    assert [r.getMessage() for r in caplog.records] == [f"demo recipe: {name} unavailable: {dropped[name]}"]


def test_a_problem_outside_the_codec_grids_is_still_an_error(tmp_path):
    raw = _raw(tmp_path, [{"family": "lowpass", "params": {"cutoff_hz": 3500}}], metrics=("no_such_metric",))
    with pytest.raises(ConfigError, match="no_such_metric"):
        shared.runnable_config(raw, tmp_path, "cfg", "demo")


def test_no_grid_left_is_an_error_not_an_empty_run(tmp_path):
    raw = _raw(tmp_path, [{"family": "qincodec", "params": {"checkpoint": str(tmp_path / "x.pt")}}])
    with pytest.raises(ConfigError, match="not found"):
        shared.runnable_config(raw, tmp_path, "cfg", "demo")


def test_tiny_clips_are_mono_cuts_of_the_first_files_by_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    stereo = rng.standard_normal((44100, 2)).astype(np.float32) * 0.1
    sf.write(src / "b.flac", stereo, 44100)
    sf.write(src / "a.wav", stereo[:, :1], 44100)
    sf.write(src / "c.wav", stereo[:, :1], 44100)
    (src / "notes.txt").write_text("not audio")
    out = shared.tiny_clips(src, tmp_path / "clips", count=2, seconds=0.25)
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav"]
    b, rate = sf.read(out / "b.wav", always_2d=True)
    assert rate == 44100 and b.shape == (11025, 1)
    np.testing.assert_allclose(b[:, 0], stereo[:11025].mean(axis=1), atol=1e-4)  # the channels' mean
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    shared.tiny_clips(src, out, count=2, seconds=0.25)  # a rerun leaves them (a float WAV header has a time stamp)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    shared.tiny_clips(src, out, count=2, seconds=0.5)  # other samples: rewritten
    assert sf.info(out / "a.wav").frames == 22050


def test_figures_are_widened_for_the_page_and_nothing_is_written_without_one(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.5, 2.0))
    fig.subplots().plot([1, 2], [3, 4])
    path = shared.save(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and tuple(fig.get_size_inches()) == (5.0, 2.0)
    assert shared.save(None, tmp_path / "g.png") is None and not (tmp_path / "g.png").exists()


def test_tables_escape_their_cells(tmp_path):
    paths = shared.write_table(pd.DataFrame({"a<b": ["<script>x</script>"], "n": [3]}), tmp_path / "t", "T & U")
    html = paths[2].read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<caption>T &amp; U</caption>" in html
    assert pd.read_csv(paths[0]).to_dict("records") == [{"a<b": "<script>x</script>", "n": 3}]


def test_variants_that_never_ran_are_reported_once_each_under_the_recipe(caplog):
    units = pd.DataFrame({"codec_spec": ["a", "b"], "status": ["skipped", "ok"], "reason": ["no weights", None]})
    with caplog.at_level("WARNING", logger="evalkit.recipes.demo"):
        assert shared.skipped_variants(SimpleNamespace(units=units), "demo") == {"a": "no weights"}
    assert [r.getMessage() for r in caplog.records] == ["demo recipe: a skipped: no weights"]


def test_unavailable_variants_become_artifacts_with_their_reason(tmp_path):
    (a,) = shared.unavailable_artifacts({"qincodec-irvq?bitrate_kbps=16": "no iRVQ"}, tmp_path)
    assert (a.key, a.kind, a.title, a.note) == ("unavailable:qincodec-irvq?bitrate_kbps=16", "unavailable",
                                                "qincodec-irvq?bitrate_kbps=16", "no iRVQ")
