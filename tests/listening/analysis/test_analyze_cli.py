"""`evalkit listen analyze` (issue 19): finished assessors only, headphone exclusion, labels, --versus, --test t,
the minimum detectable difference for the report, CIs within 0-100, and unreadable ratings files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from evalkit.cli import main
from evalkit.listening.analysis.panel import exclude_assessors, headphone_exclusions
from evalkit.listening.analysis.report import analyze_test_dir
from evalkit.listening.model import STORE_FILE, Design, Exclusion, Rating, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from tests.listening.storage.test_storage import _events

LOW, HIGH = "lowpass?cutoff_hz=2000", "lowpass?cutoff_hz=5000"  # the conftest run's conditions


@pytest.fixture()
def rated_dir(run_dir, tmp_path):
    """A MUSHRA folder (2 items) with 4 finished participants and one who stopped after 1 of 2 trials."""
    out = tmp_path / "t"
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=5))
    definition = load_definition(out)
    rng = np.random.default_rng(0)
    level = {"reference": 100.0, "anchor35": 20.0, "anchor70": 45.0, LOW: 50.0, HIGH: 70.0}
    with ListeningStore(out / STORE_FILE) as store:
        for k in range(5):
            p = store.create_participant(definition)
            trials = definition.trials_for(p.slot)
            for index, trial in enumerate(trials[:1] if k == 4 else trials):
                scores = {}
                for sid in trial.stimuli:
                    c = definition.stimuli[sid].condition
                    scores[sid] = 100.0 if c == "reference" else float(np.clip(level[c] + rng.normal(0, 6), 0, 100))
                store.submit(definition, p, index, scores=scores, events=_events(trial))
    return out


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_unfinished_assessors_are_left_out_unless_asked(rated_dir, capsys):
    report = _json(capsys, ["listen", "analyze", str(rated_dir), "--json"])
    assert report["assessors"] == 4
    assert report["excluded"] == [{"assessor": "L005", "reason": "unfinished: 1 of 2 trials"}]
    assert report["incomplete"] == [{"assessor": "L005", "done": 1, "trials": 2, "included": False}]
    assert report["test"] == "mixed" and report["comparisons"][0]["test"] == "mixed"
    kept = _json(capsys, ["listen", "analyze", str(rated_dir), "--json", "--include-incomplete"])
    assert kept["assessors"] == 5 and kept["excluded"] == []
    assert kept["incomplete"][0]["included"] is True
    assert main(["listen", "analyze", str(rated_dir), "--include-incomplete"]) == 0
    assert "unfinished but included (--include-incomplete): L005 (1 of 2)" in capsys.readouterr().out


def test_csv_assessor_with_fewer_items_is_unfinished(tmp_path, capsys):
    rows = ["assessor,item,condition,score"]
    for a in range(3):
        for i in range(3):
            rows += [f"a{a},i{i},reference,100", f"a{a},i{i},codec,{50 + 10 * a + i}"]
    rows += ["late,i0,reference,100", "late,i0,codec,10"]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    report = _json(capsys, ["listen", "analyze", "--ratings", str(tmp_path / "r.csv"), "--json", "--test", "t"])
    assert report["excluded"] == [{"assessor": "late", "reason": "unfinished: 1 of 3 items"}]
    (c,) = report["comparisons"]
    means = [np.mean([50 + 10 * a + i for i in range(3)]) for a in range(3)]
    assert c["p"] == pytest.approx(stats.ttest_rel(means, [100.0] * 3).pvalue)
    assert c["df"] == 2 and c["test"] == "t"


def test_labels_in_json_and_aligned_text(rated_dir, capsys):
    report = _json(capsys, ["listen", "analyze", str(rated_dir), "--json"])
    assert report["labels"] == {"anchor35": "3.5 kHz anchor", "anchor70": "7 kHz anchor", LOW: "2 kHz low-pass",
                                HIGH: "5 kHz low-pass", "reference": "Reference"}
    assert set(report["conditions"]) == set(report["labels"])  # keys stay the condition names
    for c in report["comparisons"]:
        assert (c["a_label"], c["b_label"]) == (report["labels"][c["a"]], report["labels"][c["b"]])
    renamed = _json(capsys, ["listen", "analyze", str(rated_dir), "--json", "--label", f"{HIGH}=Codec B"])
    assert renamed["labels"][HIGH] == "Codec B"
    assert main(["listen", "analyze", str(rated_dir)]) == 0
    text = capsys.readouterr().out
    table = text.split("\n")[1:7]
    assert table[0].startswith("condition") and "Reference" in text and LOW not in text
    assert len({line.index("]") for line in table[1:]}) == 1  # the (right-aligned) CI column ends at one place


def test_versus_compares_one_condition_with_each_other(rated_dir, capsys):
    report = _json(capsys, ["listen", "analyze", str(rated_dir), "--json", "--versus", "Reference"])
    assert report["versus"] == "reference"
    assert [(c["a"], c["b"]) for c in report["comparisons"]] == [("reference", c) for c in
                                                                 sorted(["anchor35", "anchor70", LOW, HIGH])]
    assert report["minimum_detectable_difference"]["pairs"] == 4
    assert main(["listen", "analyze", str(rated_dir), "--versus", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--versus nope: not a condition" in err and "\n" not in err


def test_report_gets_mdd_and_cis_stay_on_the_scale(rated_dir):
    report = analyze_test_dir(rated_dir)  # what `evalkit report` calls
    mdd = report["minimum_detectable_difference"]
    assert set(mdd) >= {"points", "power", "alpha", "assessors", "pairs", "method"}
    assert (mdd["power"], mdd["alpha"], mdd["assessors"], mdd["pairs"]) == (0.8, 0.05, 4, 10)
    assert 0 < mdd["points"] < 100
    assert analyze_test_dir(rated_dir)["minimum_detectable_difference"] == mdd  # seeded
    assert "clipped to 0..100" in report["ci_method"]
    summaries = list(report["conditions"].values()) + [s for cs in report["items"].values() for s in cs.values()]
    assert all(0 <= s["ci_low"] <= s["mean"] <= s["ci_high"] <= 100 for s in summaries)
    assert report["conditions"]["reference"]["ci_high"] == 100.0
    assert set(report["model"]["variance_components"]) == {"assessor", "assessor_x_condition", "assessor_x_item",
                                                           "residual"}


def test_headphone_exclusion_logic():
    ratings = [Rating(a, "i0", "reference", 100.0) for a in ("L001", "L002", "L003")]
    failed = headphone_exclusions({"L001", "L002", "L003"}, {"L001": True, "L002": False})
    kept, excluded = exclude_assessors(ratings, [], failed, include_incomplete=False)
    assert [r.assessor for r in kept] == ["L001"]
    assert excluded == [Exclusion("L002", "failed the headphone check"),
                        Exclusion("L003", "no headphone check result")]


def test_exclude_headphone_fail(rated_dir, capsys, monkeypatch):
    assert main(["listen", "analyze", str(rated_dir), "--exclude-headphone-fail"]) == 2
    err = capsys.readouterr().err.strip()
    assert "this test has no headphone check" in err and "\n" not in err and str(rated_dir) in err
    # with the store's headphone results (issue 18's ListeningStore.headphone_results)
    results = {"L001": True, "L002": True, "L003": False, "L004": True, "L005": True}
    monkeypatch.setattr(ListeningStore, "headphone_results", lambda self: results, raising=False)
    report = _json(capsys, ["listen", "analyze", str(rated_dir), "--json", "--exclude-headphone-fail"])
    assert report["assessors"] == 3
    assert {"assessor": "L003", "reason": "failed the headphone check"} in report["excluded"]


@pytest.mark.parametrize("content", [b"\x00\x01\x02PK\x03\x04\xff\xfe binary", "assessor,item,condition,score\n"
                                     "Jos\xe9,i0,reference,100\n".encode("latin-1")])
def test_binary_or_non_utf8_ratings_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "ratings.csv"
    path.write_bytes(content)
    for command in (["listen", "analyze", "--ratings", str(path)],
                    ["listen", "plan", "--ratings", str(path), "--difference", "5"]):
        assert main(command) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert captured.out == "" and "\n" not in err and "Traceback" not in err
        assert str(path) in err and "not a UTF-8 text CSV file" in err


def test_nobody_finished_yet_reports_why(run_dir, tmp_path, capsys):
    out = tmp_path / "t"
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=2))
    definition = load_definition(out)
    with ListeningStore(out / STORE_FILE) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        store.submit(definition, p, 0, scores={s: 50.0 for s in trial.stimuli}, events=_events(trial))
    report = _json(capsys, ["listen", "analyze", str(out), "--json"])
    assert report["assessors"] == 0 and report["comparisons"] == [] and report["conditions"] == {}
    assert report["excluded"] == [{"assessor": "L001", "reason": "unfinished: 1 of 2 trials"}]
    assert report["minimum_detectable_difference"]["points"] is None
    assert "needs at least 2 assessors" in report["minimum_detectable_difference"]["reason"]
    assert main(["listen", "analyze", str(out)]) == 0
    assert "L001: unfinished: 1 of 2 trials" in capsys.readouterr().out
