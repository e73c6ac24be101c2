"""Rate-quality families and the compare command on synthetic tables."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from evalkit.cli import main
from evalkit.codecs.records import rate_curve as rate_family
from evalkit.runner.compare import CompareError, compare
from evalkit.runner.rate_curves import COLUMNS, rate_quality_table
from evalkit.runner.rate_quality import load_rate_quality


def points(family, rates, quality, metric="mel_distance", higher=False):
    return [{"family": family, "codec_spec": f"{family}?r={r}", "bitrate_kbps": r, "nominal_bitrate_kbps": r,
             "metric": metric, "mean": q, "ci_low": q - 0.1, "ci_high": q + 0.1, "n": 3, "failures": 0, "unit": "",
             "higher_is_better": higher} for r, q in zip(rates, quality, strict=True)]


def table():
    mel = [1.6, 1.15, 0.85]
    return pd.DataFrame(
        points("opus", [6, 12, 24], mel) + points("encodec-24khz", [3, 6, 12], mel)  # half the bitrate
        + points("dac-44khz", [24, 48], [0.3, 0.2])  # better than opus ever gets: no quality overlap
        + points("mp3", [64], [0.9])  # one point
        + points("opus", [6, 12, 24], [2.0, 3.0, 3.5], "visqol_audio", True))


def test_families_group_klt_per_base_and_dim_and_keep_qincodec_apart():
    assert rate_family("encodec-24khz?bandwidth=6&seed=0&weights=pretrained") == "encodec-24khz"
    klt = "klt?bandwidth={}&base=encodec-24khz&dim={}&estimator=codebook&n_cov=2"
    assert rate_family(klt.format(6, 72)) == rate_family(klt.format(12, 72)) == "klt:encodec-24khz:dim=72"
    assert rate_family(klt.format(6, 64)) == "klt:encodec-24khz:dim=64"
    assert rate_family("qincodec?bitrate_kbps=6") == "qincodec"
    assert rate_family("qincodec-rvq?n_codebooks=4") == "qincodec-rvq"


def test_compare_lower_is_better_and_json_contract():
    result = compare(table(), "mel_distance")
    assert result.anchor == "opus" and result.anchor_points == 3 and result.higher_is_better is False
    out = result.to_json()
    assert set(out) == {"metric", "anchor", "families"} and out["metric"] == "mel_distance"
    assert set(out["families"]) == {"encodec-24khz", "dac-44khz", "mp3"}  # the anchor is not compared to itself
    for entry in out["families"].values():
        assert set(entry) == {"bd_rate_percent", "bd_quality", "points", "reason", "bd_rate_flags",
                              "bd_quality_flags", "bd_rate_overlap", "bd_quality_overlap"}
    encodec = out["families"]["encodec-24khz"]
    assert encodec["bd_rate_percent"] == pytest.approx(-50.0, abs=0.1) and encodec["bd_quality"] < 0
    assert encodec["points"] == 3 and encodec["reason"] is None
    dac = out["families"]["dac-44khz"]
    assert dac["bd_rate_percent"] is None and dac["points"] == 2
    assert dac["reason"] == ("BD-rate: no overlap: quality ranges [0.85, 1.6] (opus) and [0.2, 0.3] (dac-44khz) do not "
                             "intersect; BD-quality: no overlap: bitrate ranges [6, 24] (opus) and [24, 48] "
                             "(dac-44khz) do not intersect")
    assert out["families"]["mp3"] == {"bd_rate_percent": None, "bd_quality": None, "points": 1,
                                      "reason": "mp3 has 1 rate-quality point with finite values, need at least 2",
                                      "bd_rate_flags": [], "bd_quality_flags": [], "bd_rate_overlap": None,
                                      "bd_quality_overlap": None}
    assert encodec["bd_rate_flags"] == [] and encodec["bd_rate_overlap"] == pytest.approx(1.0)
    # opus 6-24 kbps against encodec 3-12 kbps: log-rate ranges share ln 2 of ln 8 = 33 %
    assert encodec["bd_quality_overlap"] == pytest.approx(1 / 3)
    assert encodec["bd_quality_flags"] == ["low overlap: the bitrate ranges share 33 % of their union (under 75 %)"]


def test_compare_against_another_anchor_reverses_the_sign():
    result = compare(table(), "mel_distance", anchor="encodec-24khz")
    assert result.families["opus"].bd_rate_percent == pytest.approx(100.0, abs=0.1)


def test_compare_errors_name_what_is_wrong():
    with pytest.raises(CompareError, match="metric 'pesq_wb' has no rate-quality points in this run; "
                                           "available: mel_distance, visqol_audio"):
        compare(table(), "pesq_wb")
    with pytest.raises(CompareError, match="anchor family 'aac' has no points for mel_distance; choose --anchor "
                                           "from: opus, encodec-24khz, dac-44khz, mp3"):
        compare(table(), "mel_distance", anchor="aac")
    without_opus = table()[lambda t: t.family != "opus"]
    with pytest.raises(CompareError, match="anchor family 'opus'"):
        compare(without_opus, "mel_distance")


def test_rate_quality_table_keeps_points_with_a_bitrate():
    summary = pd.DataFrame(table()).drop(columns="family")
    summary.loc[len(summary)] = {**summary.iloc[0].to_dict(), "codec_spec": "lowpass?cutoff_hz=3500",
                                 "bitrate_kbps": np.nan, "nominal_bitrate_kbps": np.nan}
    rq = rate_quality_table(summary, {s: rate_family(s) for s in summary.codec_spec})
    assert list(rq.columns) == COLUMNS and "lowpass" not in set(rq.family)
    assert len(rq) == len(summary) - 1
    opus = rq[(rq.family == "opus") & (rq.metric == "mel_distance")]
    assert list(opus.bitrate_kbps) == [6, 12, 24]
    assert rate_quality_table(pd.DataFrame()).columns.tolist() == COLUMNS


def test_compare_command_prints_table_and_json(tmp_path, capsys):
    table().to_csv(tmp_path / "rate_quality.csv", index=False)
    assert main(["compare", str(tmp_path), "--metric", "mel_distance"]) == 0
    text = capsys.readouterr().out
    assert "against opus (3 points), metric mel_distance (lower is better)" in text
    assert "encodec-24khz" in text and "-50.0" in text and "NaN" in text
    assert main(["compare", str(tmp_path), "--metric", "visqol_audio", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"metric": "visqol_audio", "anchor": "opus", "families": {}}
    assert main(["compare", str(tmp_path), "--metric", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metric 'nope'" in err
    assert main(["compare", str(tmp_path / "missing"), "--metric", "mel_distance"]) == 2
    assert "missing/rate_quality.csv: not found" in capsys.readouterr().err
    assert len(load_rate_quality(tmp_path)) == len(table())


def flagged_table():
    return pd.DataFrame(
        points("opus", [6, 12, 24, 48], [3.0, 3.5, 3.8, 4.0], "visqol_audio", True)
        + points("zigzag", [6, 12, 24, 48], [3.1, 3.9, 3.4, 4.1], "visqol_audio", True)  # dips at 24 kbps
        + points("wide", [6, 12, 24, 48], [2.0, 3.2, 3.4, 4.6], "visqol_audio", True))


def test_flagged_values_are_never_printed_plain(tmp_path, capsys):
    result = compare(flagged_table(), "visqol_audio")
    zigzag = result.families["zigzag"]
    assert zigzag.bd_rate_flags[0].startswith("non-monotonic: zigzag's quality does not change one way")
    assert "3.9 at 12 then 3.4 at 24" in zigzag.bd_rate_flags[0]
    assert not result.families["wide"].bd_quality_flags  # same bitrates: full log-rate overlap
    assert result.families["wide"].bd_rate_flags == (
        "low overlap: the quality ranges share 38 % of their union (under 75 %)",)
    flagged_table().to_csv(tmp_path / "rate_quality.csv", index=False)
    assert main(["compare", str(tmp_path), "--metric", "visqol_audio"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.split()}
    assert "(!)" in lines["zigzag"].split("non-monotonic")[0] and "non-monotonic" in lines["zigzag"]
    # BD-rate flagged, BD-quality (full bitrate overlap, monotonic curves) plain
    assert re.fullmatch(r"wide +4 +[-+][\d.]+ \(!\) +[-+][\d.]+  BD-rate: low overlap: .*", lines["wide"])
    assert "(!) flagged" in lines["(!)"]
