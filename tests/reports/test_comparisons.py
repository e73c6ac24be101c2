"""Paired comparisons and BD-rate flags on a real run (fixture: conftest.py): `compare --paired`, the report's
win/tie/loss tables, and a flagged BD value never shown as a plain number."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.cli import main
from evalkit.reports.comparisons import bd_context, paired_context
from evalkit.reports.html import build_context, render
from evalkit.reports.rundata import load_run
from evalkit.reports.scoreboard import scoreboard

pytestmark = pytest.mark.slow  # its run fixture evaluates a rate-quality grid (about 90 s)

OPUS6, OPUS12 = "opus?application=audio&bitrate_kbps=6", "opus?application=audio&bitrate_kbps=12"


@pytest.fixture(scope="module")
def run(report_run):
    return load_run(report_run)


def test_compare_paired_json_matches_scipy_on_the_runs_items(report_run, capsys):
    assert main(["compare", str(report_run), "--metric", "si_sdr", "--paired", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    results = pd.read_parquet(report_run / "results.parquet")
    si = results[results["metric"] == "si_sdr"].pivot(index="item_id", columns="codec_spec", values="value")
    pair = next(p for p in out["pairs"] if {p["a"], p["b"]} == {OPUS6, OPUS12})
    d = si[pair["a"]] - si[pair["b"]]
    assert pair["n"] == 3 and pair["mean_difference"] == pytest.approx(d.mean())
    assert pair["p"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert pair["outcome"] == "tie"  # 3 items: the smallest Wilcoxon p is 0.25
    assert "cannot reach alpha" in out["note"]
    assert out["labels"][OPUS12] == "Opus 12 kbps"
    assert "reference" not in out["records"]  # SI-SDR has no reference pseudo-variant rows
    n_variants = si.shape[1]
    assert len(out["pairs"]) == n_variants * (n_variants - 1) // 2


def test_compare_paired_text_and_errors(report_run, capsys):
    assert main(["compare", str(report_run), "--metric", "mel_distance", "--paired"]) == 0
    text = capsys.readouterr().out
    assert "Paired comparisons on mel_distance (lower is better)" in text and "Opus 12 kbps" in text
    assert "wins" in text and "note: with 3 shared items" in text
    assert main(["compare", str(report_run), "--metric", "nope", "--paired"]) == 2
    assert "metric 'nope' is not in this run" in capsys.readouterr().err
    assert main(["compare", str(report_run), "--metric", "si_sdr", "--paired", "--anchor", "opus"]) == 2
    assert "--anchor: --paired compares every pair" in capsys.readouterr().err


def test_report_win_tie_loss_counts_are_the_paired_records(run):
    from evalkit.runner.paired import compare_variants

    board = scoreboard(run)
    ctx = paired_context(run, board)
    assert [m["name"] for m in ctx["metrics"]] == [c.name for c in board.columns]
    variants = [r.spec for r in board.rows if r.spec != "reference"]
    expected = compare_variants(run.results, "si_sdr", True, variants=variants)
    col = [m["name"] for m in ctx["metrics"]].index("si_sdr")
    for row in ctx["rows"]:
        if row["spec"] in variants:
            assert row["cells"][col] == expected.record(row["spec"])
            assert sum(row["cells"][col].values()) == len(variants) - 1
    matrix = ctx["metrics"][col]["matrix"]
    assert len(matrix) == len(variants) and all(len(r["cells"]) == len(variants) for r in matrix)
    assert all(r["cells"][i]["outcome"] == "self" for i, r in enumerate(matrix))


def test_paired_verdicts_reach_the_matrix_when_items_allow(run):
    """More items (the same 3 repeated with small noise, as 12 distinct ones): clear gaps become wins."""
    rng = np.random.default_rng(0)
    results = run.results
    many = pd.concat([results.assign(item_id=results["item_id"] + f"#{k}",
                                     value=results["value"] + rng.normal(0, 1e-3, len(results))) for k in range(4)])
    bigger = dataclasses.replace(run, results=many)
    ctx = paired_context(bigger, scoreboard(bigger))
    mel = next(m for m in ctx["metrics"] if m["name"] == "mel_distance")
    symbols = {c["symbol"] for r in mel["matrix"] for c in r["cells"]}
    assert {"▲", "▼"} <= symbols and mel["note"] is None
    best = min(mel["matrix"], key=lambda r: sum(c["outcome"] == "loss" for c in r["cells"]))
    assert any(c["outcome"] == "win" for c in best["cells"])


def _flagged_run(run):
    rq = run.rate_quality.copy()
    opus = rq[(rq["family"] == "opus") & (rq["metric"] == "si_sdr")]
    extra = opus.iloc[[0]].assign(codec_spec="opus?application=audio&bitrate_kbps=24", bitrate_kbps=24.0,
                                  mean=float(opus["mean"].min()) - 1.0)  # more bits, worse SI-SDR: non-monotonic
    rvq = rq[(rq["family"] == "qincodec-rvq") & (rq["metric"] == "si_sdr")]
    return dataclasses.replace(run, rate_quality=pd.concat([rq, extra])), rvq


def test_flagged_bd_values_are_never_shown_plain(run):
    flagged, _ = _flagged_run(run)
    ctx = bd_context(flagged, ["si_sdr", "mel_distance"])
    row = next(r for r in ctx["headline"]["rows"] if r["family"] == "QinCodec RVQ")
    assert row["cells"][0]["flagged"] and "non-monotonic: opus's quality" in row["cells"][0]["title"]
    html = render(build_context(flagged, examples=0))
    section = html.split('id="rate-quality"')[1].split("</section>")[0]
    values = re.findall(r'<td>(<span class="[^"]*" title="[^"]*">[^<]+</span>)</td>', section)
    assert values
    for value in values:
        shown = re.search(r">([^<]+)</span>", value).group(1)
        if "non-monotonic" in value or "low overlap" in value:
            assert 'class="flagged"' in value, value
        else:
            assert 'class=""' in value and shown
    assert "Flagged" in section
