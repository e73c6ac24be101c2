"""The console scoreboard (`evalkit run`'s last table, `evalkit summary`): one row per variant, headline means,
at most 120 columns (more metrics when wider), the long table and JSON on request (fixture: conftest.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evalkit.cli import main
from evalkit.reports.console import run_scoreboard, shown_path, wide_table
from evalkit.reports.rundata import load_run
from tests.reports.conftest import CODECS, METRICS


@pytest.fixture(scope="module")
def run(report_run):
    return load_run(report_run)


def _rows(table: str) -> list[str]:
    lines = table.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) == {"-"})
    return lines[rule + 1: rule + 1 + len(CODECS) + 1]  # every variant and the reference pseudo-variant


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_wide_table_is_one_row_per_variant_with_headline_means_and_fits_120_columns(run):
    table = wide_table(run_scoreboard(run), 120)
    assert max(len(line) for line in table.splitlines()) <= 120
    rows = _rows(table)
    assert [r.split("  ")[0] for r in rows[:2]] == ["3.5 kHz anchor", "7 kHz anchor"]
    assert rows[-1].startswith("Reference")
    header = "\n".join(table.splitlines()[:4])
    assert "SI-SDR" in header and "dB ↑" in header and "Mel" in header and "distance" in header
    summary = run.summary.set_index(["codec_spec", "metric"])
    opus = next(r for r in rows if r.startswith("Opus 12 kbps"))
    spec = "opus?application=audio&bitrate_kbps=12"
    fields = opus.removeprefix("Opus 12 kbps").split()
    assert fields[0] == f"{run.bitrates[spec]:.2f}"  # measured kbps, one value per variant
    # columns: headline metrics first (SI-SDR, mel distance), then DNSMOS (headline), then the others
    expected = [summary.loc[(spec, m), "mean"] for m in ("si_sdr", "mel_distance", "dnsmos_ovrl")]
    assert [float(f.rstrip("*!")) for f in fields[1:4]] == pytest.approx(expected, abs=5e-4)


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_narrow_width_leaves_metrics_out_and_says_so(run):
    board = run_scoreboard(run)
    wide, narrow = wide_table(board, 200), wide_table(board, 60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert "not shown" in narrow and "not shown" not in wide
    assert len(wide.splitlines()[0]) > 60 or "STFT" in wide


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_best_codec_is_starred_and_random_weights_are_not(run):
    table = wide_table(run_scoreboard(run, ["mel_distance"]), 120)
    rows = _rows(table)
    starred = [r for r in rows if "*" in r]
    summary = run.summary[run.summary["metric"] == "mel_distance"]
    codecs = summary[~summary["codec_spec"].str.startswith(("lowpass", "reference", "encodec"))]
    best = codecs.loc[codecs["mean"].idxmin()]
    assert len(starred) == 1 and f"{best['mean']:.3f}*" in starred[0]
    assert not any("random weights" in r and "*" in r for r in rows)


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_summary_command_prints_the_table_long_table_and_json(report_run, capsys):
    assert main(["summary", str(report_run)]) == 0
    out = capsys.readouterr().out
    assert "Opus 12 kbps" in out and "codec variant" in out
    assert main(["summary", str(report_run), "--long"]) == 0
    long = capsys.readouterr().out
    assert "opus?application=audio&bitrate_kbps=12" in long and "95% CI" in long and "real-time factors" in long
    table = long.split("real-time factors")[0]
    assert len([line for line in table.splitlines() if line.startswith("opus?application=audio&bitrate_kbps=12 ")]) \
        == len(METRICS)
    assert main(["summary", str(report_run), "--json", "--metrics", "si_sdr", "mel_distance"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in data["metrics"]] == ["si_sdr", "mel_distance"]
    assert data["metrics"][0]["label"] == "SI-SDR" and data["metrics"][0]["unit"] == "dB"
    summary = pd.read_csv(report_run / "summary.csv").set_index(["codec_spec", "metric"])
    for v in data["variants"]:
        for name, cell in v["metrics"].items():
            if cell is None:  # the reference pseudo-variant has no SI-SDR or mel distance
                assert v["codec_spec"] == "reference"
                continue
            assert cell["mean"] == pytest.approx(summary.loc[(v["codec_spec"], name), "mean"])
            assert cell["n"] == summary.loc[(v["codec_spec"], name), "n"]
    assert data["variants"][-1]["codec_spec"] == "reference" and data["variants"][-1]["metrics"]["si_sdr"] is None


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_summary_errors_are_one_line(report_run, tmp_path, capsys):
    assert main(["summary", str(report_run), "--metrics", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--metrics: nope not in this run; its metrics: dnsmos_ovrl, mel_distance" in err[0]
    assert main(["summary", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_paths_are_printed_normalised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shown_path("configs/../runs/demo") == "runs/demo"
    assert shown_path(tmp_path / "a" / ".." / "b") == "b"
    assert shown_path("/elsewhere/x/../y") == "/elsewhere/y"
