"""`evalkit report`: one self-contained HTML file from a run (fixture: tests/reports/conftest.py), with and
without a listening test."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from evalkit.cli import main
from evalkit.listening.model import ANCHOR_LOW, ANCHOR_MID, REFERENCE, Design, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from evalkit.reports.html import build_context, render, write_report
from evalkit.reports.rundata import ReportError, load_run
from tests.reports.conftest import CODECS, ITEMS

SECTIONS = ("scoreboard", "headline", "rate-quality", "paired", "metrics", "more-figures", "codebooks", "klt", "audio",
            "speed", "failures", "provenance")


class Resources(HTMLParser):
    """Every URL-carrying attribute and every tag name of a page, section ids in order, script attributes."""

    def __init__(self):
        super().__init__()
        self.urls, self.tags, self.ids, self.sections, self.scripts = [], [], set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(dict(attrs).get("id"))
        if tag == "script":
            self.scripts.append(dict(attrs))
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "data", "poster", "action") and value:
                self.urls.append(value)
            if name == "id":
                self.ids.add(value)


def parse(html: str) -> Resources:
    page = Resources()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def report(report_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(report_run, out=out), report_run


@pytest.mark.slow
def test_report_is_one_file_that_requests_nothing(report):
    path, _ = report
    html = path.read_text()
    page = parse(html)
    assert not {"link", "iframe", "img", "object", "embed"} & set(page.tags)  # figures are inline SVG
    assert page.scripts == [{}]  # one inline script (scoreboard sorting and filter): no src, no type, no module
    external = [u for u in page.urls if not (u.startswith("#") or u.startswith("data:"))]
    assert external == []
    # inline SVG may only name its XML namespaces, never fetch anything
    assert not [u for u in re.findall(r"https?://[^\s\"'<>)]+", html) if "www.w3.org" not in u]
    assert "@import" not in html
    script = html.split("<script>")[1].split("</script>")[0]
    assert not re.search(r"fetch|XMLHttpRequest|import\(|src\s*=|https?:", script)
    assert set(re.findall(r"url\((.)", html)) <= {"#"}  # only in-page references (SVG clip paths)


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_every_section_with_data_is_present_scoreboard_first_provenance_last(report):
    path, _ = report
    page = parse(path.read_text())
    assert set(SECTIONS) <= page.ids
    assert "listening" not in page.ids  # no listening data given
    assert page.sections[0] == "scoreboard" and page.sections[-1] == "provenance"
    assert page.sections == [s for s in SECTIONS if s in page.sections]


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_random_weights_are_flagged_on_their_rows(report):
    path, run_dir = report
    html = path.read_text()
    assert 'id="random-weights"' in html
    random_spec = "encodec-24khz?bandwidth=1.5&amp;seed=0&amp;weights=random"
    rows = [r for r in re.findall(r"<tr[ >].*?</tr>", html, flags=re.S) if random_spec in r]
    assert len(rows) >= 6  # scoreboard, paired, metric table, weights table, speed, codebooks...
    assert all("RANDOM WEIGHTS" in r for r in rows)
    pretrained = [r for r in re.findall(r"<tr[ >].*?</tr>", html, flags=re.S) if "lowpass?cutoff_hz=3500" in r]
    assert pretrained and not any("RANDOM WEIGHTS" in r for r in pretrained)


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_best_value_per_metric_is_the_summary_extreme_among_codecs(report):
    path, run_dir = report
    summary = pd.read_csv(run_dir / "summary.csv")
    codecs = summary[~summary["codec_spec"].str.startswith(("lowpass", "reference"))]
    mel = codecs[codecs["metric"] == "mel_distance"]
    best = mel.loc[mel["mean"].idxmin()]
    sisdr = codecs[codecs["metric"] == "si_sdr"]
    best_sisdr = sisdr.loc[sisdr["mean"].idxmax()]
    html = path.read_text()
    scoreboard = html.split('id="scoreboard"')[1].split("</section>")[0]
    marked = re.findall(r'class="best">([-\d.]+) ★', scoreboard)
    assert {f"{best['mean']:.3f}", f"{best_sisdr['mean']:.3f}"} <= set(marked)
    assert len(marked) == 3  # one per headline metric: SI-SDR, mel distance, DNSMOS OVRL
    detail = html.split('id="metrics"')[1].split("</section>")[0]
    assert len(re.findall(r'class="best">([-\d.]+) ★', detail)) == 4  # every metric, STFT distance too


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_audio_examples_inline_every_variant_of_each_item(report):
    path, run_dir = report
    html = path.read_text()
    clips = re.findall(r'<audio controls preload="none" src="(data:audio/ogg;codecs=opus;base64,[^"]+)"', html)
    assert len(clips) == len(ITEMS) * (len(CODECS) + 1)  # reference + every variant
    import base64
    assert all(base64.b64decode(c.split(",", 1)[1])[:4] == b"OggS" for c in clips)
    assert path.stat().st_size < 15e6


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_provenance_has_config_versions_and_weights(report):
    path, run_dir = report
    html = path.read_text()
    run = load_run(run_dir)
    assert run.provenance["config"]["metrics"] == ["si_sdr", "mel_distance", "stft_distance", "dnsmos_ovrl"]
    assert "Library versions" in html and run.provenance["libraries"]["numpy"] in html
    assert "evalkit-trained QinCodec" in html  # the weights label of the QinCodec variants


@pytest.mark.slow
def test_failures_list_every_nan_with_its_reason(report_run, tmp_path):
    import sqlite3

    copy = tmp_path / "run"
    import shutil
    shutil.copytree(report_run, copy)
    results = pd.read_parquet(copy / "results.parquet")
    results.loc[results.index[0], ["value", "reason"]] = [np.nan, "made-up failure for the test"]
    results.to_parquet(copy / "results.parquet")
    with sqlite3.connect(copy / "results.sqlite") as db:
        db.execute("UPDATE units SET status = 'error', reason = 'boom: a codec crashed' WHERE unit_key = "
                   "(SELECT unit_key FROM current_plan LIMIT 1)")
    html = write_report(copy, out=tmp_path / "r.html", examples=0).read_text()
    failures = html.split('id="failures"')[1]
    assert "made-up failure for the test" in failures and "boom: a codec crashed" in failures
    assert 'id="audio"' not in html  # --examples 0


def _rate(definition, stimulus: str, rng) -> float:
    condition = definition.stimuli[stimulus].condition
    base = {REFERENCE: 98, ANCHOR_MID: 55, ANCHOR_LOW: 25}.get(condition)
    if base is None:
        base = 70 if "bitrate_kbps=12" in condition else 45
    return float(np.clip(base + rng.normal(0, 4), 0, 100))


@pytest.fixture(scope="module")
def rated(report_run, tmp_path_factory):
    """A MUSHRA test on the run's two Opus variants, 4 simulated listeners, all trials rated."""
    folder = tmp_path_factory.mktemp("mushra") / "test"
    conditions = ["opus?application=audio&bitrate_kbps=6", "opus?application=audio&bitrate_kbps=12"]
    prepare_test(report_run, folder, PrepareOptions(Design.MUSHRA, listeners=4, conditions=tuple(conditions)))
    definition = load_definition(folder)
    rng = np.random.default_rng(3)
    with ListeningStore(folder / "listening.sqlite") as store:
        for _ in range(4):
            participant = store.create_participant(definition)
            for k, trial in enumerate(definition.trials_for(participant.slot)):
                store.submit(definition, participant, k, scores={s: _rate(definition, s, rng) for s in trial.stimuli})
    return folder


@pytest.mark.slow
def test_report_with_listening_results(report_run, rated, tmp_path):
    html = write_report(report_run, rated, tmp_path / "r.html", examples=0).read_text()
    section = html.split('id="listening"')[1]
    assert "Post-screening" in section and "Paired comparisons" in section
    assert section.count("<figure") >= 3  # means, per item, box plots (+ correlation scatter plots)
    table = section.split("Listening scores against objective metrics")[1]
    for metric, header in (("si_sdr", "SI-SDR (dB) ↑"), ("mel_distance", "Mel distance ↓")):
        assert f'<td class="txt" title="{metric}">{header}</td>' in table
    means = section.split("<tbody>")[1].split("</tbody>")[0]
    assert ">Opus 6 kbps</td>" in means and ">Opus 12 kbps</td>" in means and ">Reference</td>" in means
    assert ">3.5 kHz anchor</td>" in means and 'title="opus?application=audio&amp;bitrate_kbps=12"' in means


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_listening_points_join_item_means_with_metric_values(report_run, rated):
    from evalkit.reports.listening_data import load_listening

    data = load_listening(rated, load_run(report_run))
    points = data.points[data.points["metric"] == "mel_distance"]
    # every rated item through both Opus conditions and both anchors (the hidden reference has no metric value)
    assert len(points) == len(data.analysis["items"]) * 4
    results = pd.read_parquet(report_run / "results.parquet")
    for row in points.itertuples():
        expected = results[(results["item_id"] == row.item) & (results["codec_spec"] == row.codec_spec)
                           & (results["metric"] == "mel_distance")]["value"].item()
        assert row.metric_value == pytest.approx(expected)
        assert row.listening_mean == pytest.approx(data.analysis["items"][row.item][row.condition]["mean"])
    assert set(points["condition"]) <= set(data.conditions)  # the hidden reference has no metric value


@pytest.mark.slow
def test_cli_writes_the_report_and_reports_bad_folders(report_run, tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(report_run), "-o", str(out), "--examples", "0"]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"evalkit: error: {tmp_path / 'nope'}: no such run folder"]
    assert main(["report", str(report_run), "--examples", "-1"]) == 2
    assert "--examples -1: expected 0 or more" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(report_run), "--listening", str(tmp_path / "empty"), "-o", str(out)]) == 2
    assert "no test definition" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_without_run_json_or_cuda_key_still_reports(report_run, tmp_path):
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(report_run, copy)
    record = json.loads((copy / "run.json").read_text())
    del record["machine"]["cuda"]  # as written by a CPU-only coordinator before the key was always present
    (copy / "run.json").write_text(json.dumps(record))
    assert "Machine:" in write_report(copy, out=tmp_path / "a.html", examples=0).read_text()
    (copy / "run.json").unlink()
    assert "has no <code>run.json</code>" in write_report(copy, out=tmp_path / "b.html", examples=0).read_text()


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_random_weight_codecs_never_get_the_best_mark(report_run):
    from evalkit.reports.tables import metric_table

    table = metric_table(load_run(report_run))
    random_rows = [r for r in table["rows"] if r["random"]]
    assert random_rows and not any(c and c["best"] for r in random_rows for c in r["cells"])
    assert table["rows"][0]["kind"] == "anchor"


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_bitrate_is_one_value_per_variant_over_its_units(report_run):
    import sqlite3

    run = load_run(report_run)
    with sqlite3.connect(report_run / "results.sqlite") as db:
        rows = db.execute("SELECT measured_bitrate_bps FROM units u JOIN current_plan USING (unit_key) "
                          "WHERE codec_spec = 'opus?application=audio&bitrate_kbps=6'").fetchall()
    assert run.bitrates["opus?application=audio&bitrate_kbps=6"] == pytest.approx(
        np.mean([r[0] for r in rows]) / 1000)


def test_load_run_refuses_a_folder_without_a_finished_run(tmp_path):
    with pytest.raises(ReportError, match="not a finished run folder"):
        load_run(tmp_path)


@pytest.mark.slow
def test_listening_section_shows_the_analysis_extras_and_keeps_cis_on_the_scale(report_run, rated):
    """Keys the listening analysis may carry (comparison CIs, incomplete assessors, the minimum detectable
    difference) are shown when present; a Student-t bound past 100 is shown at 100 and marked."""
    import dataclasses

    from evalkit.reports.listening_data import load_listening
    from evalkit.reports.listening_section import listening_context

    data = load_listening(rated, load_run(report_run))
    analysis = dict(data.analysis)
    analysis["conditions"] = {**analysis["conditions"],
                              "reference": {**analysis["conditions"]["reference"], "ci_low": 96.0, "ci_high": 103.5}}
    analysis["comparisons"] = [{**c, "ci_low": -12.5, "ci_high": -3.25} for c in analysis["comparisons"]]
    analysis["incomplete"] = [{"assessor": "p9", "reason": "rated 2 of 6 trials"}]
    analysis["minimum_detectable_difference"] = {"points": 7.46, "power": 0.8, "alpha": 0.05, "assessors": 4,
                                                 "pairs": 10, "method": "paired t, Holm-adjusted alpha"}
    ctx = listening_context(dataclasses.replace(data, analysis=analysis))
    reference = next(r for r in ctx["rows"] if r["label"] == "Reference")
    assert reference["ci"] == "[96.0, 100.0]" and reference["clamped"] and ctx["clamped"]
    assert all(0 <= float(b) <= 100 for r in ctx["rows"] if r["ci"] != "-" for b in r["ci"][1:-1].split(", "))
    assert ctx["comparisons"][0]["ci"] == "[-12.5, -3.2]" and ctx["has_comparison_ci"]
    assert {"assessor": "p9", "status": "incomplete", "reason": "rated 2 of 6 trials"} in ctx["assessors"]
    html = render(build_context(load_run(report_run), dataclasses.replace(data, analysis=analysis), examples=0))
    section = html.split('id="listening"')[1].split("</section>")[0]
    assert "Minimum detectable difference: 7.5 points" in section and "power 80 %" in section
    assert "rated 2 of 6 trials" in section and "‡ a bound beyond the scale" in section
    assert section.index("Minimum detectable difference") < section.index("Post-screening")
