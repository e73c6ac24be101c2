"""`evalkit listen plan`: the JSON contract, agreement with the library's simulation, and bad input (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.listening.analysis.ratings_csv import load_ratings_csv
from evalkit.listening.model import STORE_FILE, Design, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from evalkit.stats.mixed_model import fit_mixed
from evalkit.stats.power import PanelModel, assessors_needed
from tests.listening.storage.test_storage import _events


@pytest.fixture()
def pilot_csv(tmp_path):
    rng = np.random.default_rng(4)
    levels = {"reference": 100.0, "anchor35": 22.0, "opus?bitrate_kbps=12": 70.0, "qincodec?bitrate_kbps=8": 64.0}
    rows = ["assessor,item,condition,score"]
    for a in range(6):
        w = {c: rng.normal(0, 5) for c in levels}
        for i in range(3):
            for c, mu in levels.items():
                score = 100.0 if c == "reference" else float(np.clip(mu + w[c] + rng.normal(0, 7), 0, 100))
                rows.append(f"L{a},i{i},{c},{score:.1f}")
    path = tmp_path / "pilot.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow  # power simulations of the mixed model
def test_plan_json_contract_and_the_library_agree(pilot_csv, capsys):
    argv = ["listen", "plan", "--ratings", str(pilot_csv), "--difference", "8", "--sims", "500", "--json"]
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {"difference", "power", "alpha", "pairs", "items", "conditions", "pilot_assessors", "assessors_needed",
            "achieved_power", "minimum_detectable_difference", "variance_components", "labels", "rows",
            "method"} <= set(plan)
    assert (plan["pairs"], plan["items"], plan["conditions"], plan["pilot_assessors"]) == (6, 3, 4, 6)
    fit = fit_mixed(load_ratings_csv(pilot_csv))
    expected = assessors_needed(PanelModel.from_fit(fit), 8.0, 0.8, 0.05, pairs=6, sims=500, seed=0)
    assert plan["assessors_needed"] == expected.assessors and plan["achieved_power"] == expected.power
    assert plan["achieved_power"] >= 0.8
    assert len(plan["rows"]) == 6
    row = next(r for r in plan["rows"] if r["a"] == "opus?bitrate_kbps=12")
    assert (row["a_label"], row["b_label"]) == ("Opus 12 kbps", "QinCodec 8 kbps")
    assert row["power_with_pilot_panel"] < 0.8 <= plan["achieved_power"]
    # more items per assessor or fewer pairs need fewer assessors
    for extra in (["--items", "6"], ["--pairs", "1"]):
        assert main(argv + extra) == 0
        assert json.loads(capsys.readouterr().out)["assessors_needed"] <= plan["assessors_needed"]
    assert main(argv[:-1] + ["--versus", "Opus 12 kbps"]) == 0
    text = capsys.readouterr().out
    assert "over 3 pairs" in text and "assessors needed for 8 points:" in text and "QinCodec 8 kbps" in text


def test_plan_from_a_test_folder(run_dir, tmp_path, capsys):
    out = tmp_path / "t"
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=3))
    definition = load_definition(out)
    rng = np.random.default_rng(1)
    with ListeningStore(out / STORE_FILE) as store:
        for _ in range(3):
            p = store.create_participant(definition)
            for index, trial in enumerate(definition.trials_for(p.slot)):
                scores = {s: 100.0 if definition.stimuli[s].condition == "reference" else float(rng.uniform(20, 80))
                          for s in trial.stimuli}
                store.submit(definition, p, index, scores=scores, events=_events(trial))
    assert main(["listen", "plan", "--pilot", str(out), "--difference", "10", "--sims", "200", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["pilot_assessors"] == 3 and plan["pairs"] == 10


@pytest.mark.parametrize(("extra", "message"), [
    (["--difference", "0"], "--difference 0.0: expected points > 0"),
    (["--difference", "5", "--power", "1.5"], "--power 1.5: expected a number between 0 and 1"),
    (["--difference", "5", "--alpha", "0"], "--alpha 0.0: expected a number between 0 and 1"),
    (["--difference", "5", "--pairs", "0"], "--pairs 0: expected 1 or more"),
    (["--difference", "5", "--sims", "10"], "--sims 10: expected 100 or more"),
    (["--difference", "5", "--versus", "nope"], "--versus nope: not a condition"),
])
def test_bad_plan_input_is_one_line_exit_2(pilot_csv, capsys, extra, message):
    assert main(["listen", "plan", "--ratings", str(pilot_csv), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_plan_needs_one_mushra_source(run_dir, pilot_csv, tmp_path, capsys):
    ab = tmp_path / "ab"
    prepare_test(run_dir, ab, PrepareOptions(Design.AB, items=1))
    definition = load_definition(ab)
    with ListeningStore(ab / STORE_FILE) as store:
        p = store.create_participant(definition)
        for index, trial in enumerate(definition.trials_for(p.slot)):
            store.submit(definition, p, index, answer="A", events=_events(trial))
    cases = [(["--difference", "5"], "give either --pilot TEST_DIR or --ratings FILE.csv"),
             (["--pilot", str(ab), "--ratings", str(pilot_csv), "--difference", "5"], "give either"),
             (["--pilot", str(ab), "--difference", "5"], "plans MUSHRA panels, this test is ab"),
             (["--ratings", str(pilot_csv), "--difference", "5", "--exclude-headphone-fail"],
              "a ratings CSV has no headphone check")]
    for extra, message in cases:
        assert main(["listen", "plan", *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_ab_plan_json_is_the_librarys_power_and_panel_size(capsys):
    from evalkit.stats.choice_power import choice_power, listeners_needed

    assert main(["listen", "plan", "--design", "ab", "--answers", "6", "--preference", "0.75", "--listeners", "7",
                 "--sims", "500", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["power"] == choice_power(7, 6, 0.75, sims=500)
    assert plan["listeners_needed"] == listeners_needed(6, 0.75, sims=500)
    assert plan["design"] == "ab" and "two-sided" in plan["test"]


@pytest.mark.parametrize("argv", [["--design", "ab", "--answers", "6"], ["--design", "abx", "--answers", "0",
                                                                         "--preference", "0.7"], []])
def test_bad_plan_options_are_one_line_exit_2(argv, capsys):
    assert main(["listen", "plan", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evalkit: error: listen plan") and "\n" not in err
