"""Input above full scale: flagged per unit in the store and the exports, one warning per run, a report banner."""

import logging
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from evalkit import audio
from evalkit.cli import main
from evalkit.reports.html import write_report
from evalkit.runner.store import Store
from tests.metrics.test_delay_window import RATE, speech_like

HOT = "hot\ttake.wav"  # a tab in the name: the warning escapes it
HOT_PEAK_DBFS = 20 * math.log10(3.5)


@pytest.fixture
def hot_dataset(tmp_path):
    """Two 1 s float WAV items at 16 kHz: one peaking at 3.5 × full scale, one at 0.5."""
    folder = tmp_path / "data"
    folder.mkdir()
    x = speech_like(1.0)  # peak 0.5
    sf.write(folder / HOT, (7 * x).T, RATE, subtype="FLOAT")
    sf.write(folder / "quiet.wav", x.T, RATE, subtype="FLOAT")
    config = {"dataset": {"folder": str(folder), "glob": "*.wav"},
              "codecs": [{"spec": "lowpass?cutoff_hz=3500"}, {"spec": "opus?bitrate_kbps=24"}],
              "metrics": ["si_sdr"], "output": str(tmp_path / "out"), "workers": 0}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, tmp_path / "out"


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "full scale" in r.getMessage()]


@pytest.mark.slow  # a codec run with reports
def test_input_above_full_scale_is_flagged_stored_exported_warned_once_and_reported(hot_dataset, caplog):
    config, out = hot_dataset
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(config)]) == 0
    [warning] = _warnings(caplog)
    assert warning.startswith("1 item(s) exceed full scale (|x| > 1.0, peak up to +10.9 dBFS): 'hot\\ttake.wav';")
    assert "quiet.wav" not in warning and "\t" not in warning
    assert audio.peak(audio.load(config.parent / "data" / HOT).samples).dbfs == pytest.approx(HOT_PEAK_DBFS, abs=1e-4)

    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT item_id, codec_spec, input_peak_dbfs, input_over_full_scale FROM units").fetchall()
    assert len(rows) == 4
    for item, _, peak_dbfs, flag in rows:
        assert flag == (item == HOT)
        assert peak_dbfs == pytest.approx(HOT_PEAK_DBFS if item == HOT else 20 * math.log10(0.5), abs=1e-4)
    for tidy in (pd.read_csv(out / "results.csv"), pd.read_parquet(out / "results.parquet")):
        flags = tidy.groupby("item_id")["input_over_full_scale"].agg(set).to_dict()
        assert flags == {HOT: {True}, "quiet.wav": {False}}
        assert tidy.loc[tidy.item_id == HOT, "input_peak_dbfs"].to_numpy() == pytest.approx(HOT_PEAK_DBFS, abs=1e-4)

    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a rerun with nothing left to do still says so, once
        assert main(["run", str(config)]) == 0
    assert len(_warnings(caplog)) == 1

    html = write_report(out, out=out / "report.html", examples=0).read_text()
    assert 'id="over-full-scale"' in html and "Input above full scale:" in html
    assert "<code>hot\ttake.wav</code> (+10.9 dBFS)" in html and "quiet.wav</code> (" not in html


def test_a_run_within_full_scale_neither_warns_nor_shows_the_banner(hot_dataset, caplog):
    config, out = hot_dataset
    (config.parent / "data" / HOT).unlink()
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(config)]) == 0
    assert _warnings(caplog) == []
    assert not pd.read_csv(out / "results.csv")["input_over_full_scale"].any()
    assert "over-full-scale" not in write_report(out, out=out / "report.html", examples=0).read_text()


def test_a_store_written_before_the_flag_gains_its_columns(tmp_path):
    path = tmp_path / "results.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:  # as older versions wrote it
        db.execute("ALTER TABLE units DROP COLUMN input_peak_dbfs")
        db.execute("ALTER TABLE units DROP COLUMN input_over_full_scale")
    with Store(path) as store:
        columns = {row[1] for row in store.db.execute("PRAGMA table_info(units)")}
    assert {"input_peak_dbfs", "input_over_full_scale"} <= columns


def test_peak_in_dbfs_and_full_scale_by_hand():
    assert audio.peak(np.array([[0.25, -0.5]], np.float32)).dbfs == pytest.approx(-6.0206, abs=1e-4)
    assert not audio.peak(np.array([[-1.0, 1.0]], np.float32)).over_full_scale  # exactly full scale
    assert audio.peak(np.array([[0.0, 1.0001]], np.float32)).over_full_scale
    assert audio.peak(np.zeros((1, 4), np.float32)).dbfs == -math.inf


def test_units_stored_without_the_flag_get_it_when_their_cached_audio_is_rescored(hot_dataset, caplog):
    config, out = hot_dataset
    assert main(["run", str(config)]) == 0
    with sqlite3.connect(out / "results.sqlite") as db:  # as an older version left them, with a metric to rescore
        db.execute("UPDATE units SET input_peak_dbfs = NULL, input_over_full_scale = NULL")
        db.execute("DELETE FROM results")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(config)]) == 0
    assert len(_warnings(caplog)) == 1
    with sqlite3.connect(out / "results.sqlite") as db:
        flags = db.execute("SELECT item_id, input_over_full_scale FROM units").fetchall()
    assert sorted(flags) == [(HOT, 1), (HOT, 1), ("quiet.wav", 0), ("quiet.wav", 0)]
