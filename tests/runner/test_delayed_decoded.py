"""Decoded folders whose files are late: the delay is found, or the unit's aligned metrics are counted failures."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from evalkit.reports.rundata import load_run
from evalkit.reports.scoreboard import scoreboard
from evalkit.reports.tables import failure_rows
from tests.metrics.test_delay_window import RATE, coded, delayed, si_sdr_db, speech_like
from tests.runner.conftest import run_raw

DELAYS_MS = {"a.wav": 0, "b.wav": 150, "c.wav": 200, "d.wav": 400}  # d: beyond the ±300 ms window of 3 s


@pytest.fixture
def late_decodings(tmp_path):
    data, decoded = tmp_path / "data", tmp_path / "decoded"
    data.mkdir()
    decoded.mkdir()
    expected = {}
    for i, (name, ms) in enumerate(DELAYS_MS.items()):
        x = speech_like(seed=20 + i)
        y = coded(x, seed=40 + i)
        sf.write(data / name, x.T, RATE, subtype="FLOAT")
        sf.write(decoded / name, delayed(y, ms).T, RATE, subtype="FLOAT")
        expected[name] = si_sdr_db(x, y)
    return data, decoded, expected


def test_late_decoded_files_score_right_or_count_as_failures_in_summary_and_report(late_decodings, tmp_path):
    data, decoded, expected = late_decodings
    raw = {"dataset": {"folder": str(data), "glob": "*.wav"},
           "codecs": [{"decoded": {"folder": str(decoded), "label": "late tool"}}],
           "metrics": ["si_sdr", "stoi"], "output": str(tmp_path / "out"), "workers": 0}
    report = run_raw(raw, tmp_path)
    tidy = pd.read_csv(report.exports["results_csv"])
    si = tidy[tidy.metric == "si_sdr"].set_index("item_id")
    for name in ("a.wav", "b.wav", "c.wav"):
        assert si.loc[name, "value"] == pytest.approx(expected[name], abs=0.3)
        assert si.loc[name, "delay_samples"] == round(DELAYS_MS[name] * RATE / 1000)
    assert np.isnan(si.loc["d.wav", "value"])
    assert si.loc["d.wav", "reason"].startswith("no reliable delay within ±300 ms and the pair is misaligned")
    summary = pd.read_csv(report.exports["summary_csv"]).set_index("metric")
    for metric in ("si_sdr", "stoi"):
        assert (summary.loc[metric, "n"], summary.loc[metric, "failures"]) == (3, 1)
    scored = [expected[name] for name in ("a.wav", "b.wav", "c.wav")]
    assert summary.loc["si_sdr", "mean"] == pytest.approx(np.mean(scored), abs=0.3)
    assert report.units_failed == 0  # the unit ran; its aligned metrics are the failures
    run = load_run(tmp_path / "out")
    cells = scoreboard(run, ["si_sdr", "stoi"]).rows[0].cells
    assert cells["si_sdr"].failures == 1 and cells["stoi"].failures == 1
    nan_rows = [r for r in failure_rows(run) if r["kind"] == "NaN"]
    assert {r["item_ids"] for r in nan_rows} == {"d.wav"} and sum(r["count"] for r in nan_rows) == 2
    assert all(r["reason"].startswith("no reliable delay") for r in nan_rows)
