"""Scoreboard, `evalkit summary` (table and --json), the report's tables and summary.csv compare variants on
the items they share: a variant that failed on the hard item is never starred for its mean over the easy ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.reports.console import board_json, wide_table
from evalkit.reports.rundata import RunData
from evalkit.reports.scoreboard import scoreboard
from evalkit.runner.exports import summarize

OPUS6, OPUS12, ANCHOR = "opus?application=audio&bitrate_kbps=6", "opus?application=audio&bitrate_kbps=12", \
    "lowpass?cutoff_hz=3500"
NAN = math.nan
# mel distance (lower is better) on items a, b (easy) and c (hard): Opus 12 fails on c. Over its own items its
# mean (0.95) beats Opus 6's (2.067); on the shared items a, b Opus 6 has 1.1.
MEL = {OPUS6: [1.0, 1.2, 4.0], OPUS12: [0.9, 1.0, NAN], ANCHOR: [2.0, 2.5, 3.0]}
SI_SDR = {OPUS6: [5.0, 6.0, 1.0], OPUS12: [7.0, 8.0, NAN], ANCHOR: [9.0, 9.0, 9.0]}  # Opus 12 fails for all


def _tidy() -> pd.DataFrame:
    rows = []
    for metric, table, unit in (("mel_distance", MEL, ""), ("si_sdr", SI_SDR, "dB")):
        for spec, values in table.items():
            for item, value in zip("abc", values, strict=True):
                rows.append({"item_id": item, "codec_spec": spec, "metric": metric, "value": value,
                             "unit_key": f"{spec}:{item}", "bitrate_kbps": NAN if spec == ANCHOR else 6.0,
                             "nominal_bitrate_kbps": NAN, "weights": "none", "delta": NAN, "unit": unit})
    return pd.DataFrame(rows)


def _run(summary: pd.DataFrame, results: pd.DataFrame) -> RunData:
    empty = pd.DataFrame()
    return RunData(Path("run"), results, summary, empty, empty, empty, empty, empty, empty, {})


@pytest.fixture
def run() -> RunData:
    tidy = _tidy()
    return _run(summarize(tidy, seed=0), tidy)


def test_summary_csv_keeps_own_means_and_adds_the_shared_item_columns(run):
    s = run.summary.set_index(["codec_spec", "metric"])
    assert s.loc[(OPUS12, "mel_distance"), "mean"] == pytest.approx(0.95) and s.loc[(OPUS12, "mel_distance"), "n"] == 2
    assert s.loc[(OPUS6, "mel_distance"), "mean"] == pytest.approx(np.mean([1.0, 1.2, 4.0]))
    assert s.loc[(OPUS6, "mel_distance"), "mean_shared"] == pytest.approx(1.1)
    assert s.loc[(OPUS6, "mel_distance"), ["n_shared", "n_any"]].tolist() == [2, 3]
    assert bool(s.loc[(OPUS6, "mel_distance"), "complete"]) and not bool(s.loc[(OPUS12, "mel_distance"), "complete"])


def test_the_star_goes_to_a_complete_variant_on_the_shared_items(run):
    board = scoreboard(run, ["mel_distance", "si_sdr"])
    cells = {r.spec: r.cells["mel_distance"] for r in board.rows}
    assert cells[OPUS6].mean == pytest.approx(1.1) and cells[OPUS6].n == 2 and cells[OPUS6].best
    assert cells[OPUS12].mean == pytest.approx(0.95) and not cells[OPUS12].best and not cells[OPUS12].complete
    assert cells[ANCHOR].mean == pytest.approx(2.25) and not cells[ANCHOR].best  # anchors are never starred
    assert cells[OPUS6].mean_all == pytest.approx(np.mean([1.0, 1.2, 4.0])) and cells[OPUS12].n_scored == 2
    assert board.n_shared == {"mel_distance": 2, "si_sdr": 2} and board.n_any == {"mel_distance": 3, "si_sdr": 3}
    si = {r.spec: r.cells["si_sdr"] for r in board.rows}
    assert si[OPUS6].best and si[OPUS6].mean == pytest.approx(5.5)  # Opus 12's 7.5 is over a, b only


def test_console_table_marks_the_incomplete_variant_and_states_n(run):
    table = wide_table(scoreboard(run, ["mel_distance"]), 120)
    opus12 = next(line for line in table.splitlines() if line.startswith("Opus 12 kbps"))
    opus6 = next(line for line in table.splitlines() if line.startswith("Opus 6 kbps"))
    assert opus12.split()[-1] == "0.950!" and opus6.split()[-1] == "1.100*"
    assert "Mel distance 2/3" in table.replace("\n", " ")


def test_summary_json_keeps_its_keys_and_adds_shared_item_ones(run):
    data = board_json(scoreboard(run, ["mel_distance"]))
    assert data["metrics"][0]["n_shared"] == 2 and data["metrics"][0]["n_any"] == 3
    cells = {v["codec_spec"]: v["metrics"]["mel_distance"] for v in data["variants"]}
    assert {"mean", "ci_low", "ci_high", "n", "failures", "best"} <= set(cells[OPUS12])
    assert cells[OPUS12] | {"mean": round(cells[OPUS12]["mean"], 9), "mean_all": round(cells[OPUS12]["mean_all"], 9)} \
        == {"mean": 0.95, "ci_low": None, "ci_high": None, "n": 2, "failures": 1, "best": False, "n_scored": 2,
            "complete": False, "mean_all": 0.95}
    assert cells[OPUS6]["best"] and cells[OPUS6]["n"] == 2 and cells[OPUS6]["mean_all"] == pytest.approx(2.0666667)


def test_report_tables_follow_the_same_rule(run):
    from evalkit.reports import tables

    records = tables.board_records(scoreboard(run, ["mel_distance"]))
    by_spec = {r["spec"]: r["cells"][0] for r in records["rows"]}
    assert by_spec[OPUS6]["best"] and not by_spec[OPUS12]["best"] and not by_spec[OPUS12]["complete"]
    assert "scored 2 of the column's 3 items" in by_spec[OPUS12]["title"]
    metric_rows = {r["spec"]: r["cells"][0] for r in tables.metric_table(run, ["mel_distance"])["rows"]}
    assert metric_rows[OPUS6]["best"] and not metric_rows[OPUS12]["best"]
    assert metric_rows[OPUS6]["mean"] == "1.100" and metric_rows[OPUS6]["n"] == 2


def test_a_summary_exported_before_the_shared_columns_gives_the_same_board(run):
    old = run.summary.drop(columns=["mean_shared", "ci_low_shared", "ci_high_shared", "n_shared", "n_any",
                                    "complete"])
    before = scoreboard(_run(old, run.results), ["mel_distance", "si_sdr"])
    assert board_json(before) == board_json(scoreboard(run, ["mel_distance", "si_sdr"]))  # NaN as None
