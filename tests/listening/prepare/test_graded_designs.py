"""ACR, DCR and BS.1116 without a browser (issue 27, point 9): the trials `listen prepare` builds, the scales the
store accepts, what the player is sent, the server's must-play rules, and `listen analyze` on stored grades."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.listening.model import OPEN_REFERENCE, REFERENCE, STORE_FILE, Design, ListenError, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.session import handle_submission, player_data, presented, wire_id
from tests.listening.analysis.test_behaviour import Clock
from tests.listening.conftest import CONDITIONS


@pytest.fixture(scope="module")
def folders(run_dir, tmp_path_factory) -> dict[Design, object]:
    out = {}
    for design in (Design.ACR, Design.DCR, Design.BS1116):
        folder = tmp_path_factory.mktemp(str(design)) / "test"
        prepare_test(run_dir, folder, PrepareOptions(design, items=2, listeners=4))
        out[design] = folder
    return out


def _conditions(definition, trial) -> list[str]:
    return [definition.stimuli[s].condition for s in trial.stimuli]


@pytest.mark.parametrize("design", [Design.ACR, Design.DCR])
def test_acr_and_dcr_show_each_condition_and_the_hidden_reference_once_per_item(folders, design):
    definition = load_definition(folders[design])
    assert set(definition.conditions) == set(CONDITIONS)  # no anchors
    for slot in definition.slots:
        shown = Counter((t.item, *_conditions(definition, t)) for t in slot)
        assert shown == Counter({(i, c): 1 for i in definition.items for c in (REFERENCE, *CONDITIONS)})
        for t in slot:
            assert len(t.stimuli) == 1 and definition.stimuli[t.stimuli[0]].item == t.item
            if design is Design.ACR:
                assert t.reference is None
            else:  # DCR: an open reference of the same item, in files of its own
                assert definition.stimuli[t.reference].condition == OPEN_REFERENCE
                assert definition.stimuli[t.reference].item == t.item
    ids = [s for slot in definition.slots for t in slot for s in presented(t)]
    assert len(ids) == len(set(ids)) * len(definition.slots)  # every trial has files of its own


def test_bs1116_hides_the_reference_on_balanced_sides(folders):
    definition = load_definition(folders[Design.BS1116])
    sides = []
    for slot in definition.slots:
        assert Counter(t.item for t in slot) == Counter({i: len(CONDITIONS) for i in definition.items})
        for t in slot:
            shown = _conditions(definition, t)
            assert sorted(shown, key=lambda c: c != REFERENCE)[0] == REFERENCE and len(set(shown)) == 2
            assert definition.stimuli[t.reference].condition == OPEN_REFERENCE
        sides.append([_conditions(definition, t)[0] == REFERENCE for t in slot])
    assert all(sum(s) == len(s) // 2 for s in sides)  # the hidden reference on A in half of each listener's trials
    first = {(t.item, _conditions(definition, t)[0]) for t in definition.slots[0]}
    second = {(t.item, _conditions(definition, t)[1]) for t in definition.slots[1]}
    assert first == second  # listener 2 sees each trial the other way round


def test_repeats_is_only_for_ab_and_abx(run_dir, tmp_path):
    with pytest.raises(ListenError, match="--repeats: only for the ab and abx designs"):
        prepare_test(run_dir, tmp_path / "t", PrepareOptions(Design.ACR, repeats=2))


def _played(participant, ids) -> list[dict]:
    return [{"stimulus_id": wire_id(participant, s), "start_s": 0.0, "duration_s": 0.5, "at_ms": 1.0} for s in ids]


@pytest.mark.parametrize(("design", "bad", "good"), [(Design.ACR, 3.5, 4), (Design.DCR, 0, 1),
                                                      (Design.BS1116, 3.55, 3.7)])
def test_store_takes_only_grades_of_the_scale(folders, fresh_copy, design, bad, good):
    folder = fresh_copy(folders[design])
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        scores = dict.fromkeys(trial.stimuli, good)
        with pytest.raises(ListenError, match=f"is not a grade of the {design} scale"):
            store.submit(definition, p, 0, scores=dict.fromkeys(trial.stimuli, bad))
        assert store.submit(definition, p, 0, scores=scores)
        stored = [r.score for _, index, r in store.trial_ratings() if index == 0]
        assert stored == [good] * len(trial.stimuli)


def test_player_gets_the_scale_and_neutral_labels(folders):
    for design, labels, reference in ((Design.ACR, ["Sample"], False), (Design.DCR, ["Sample"], True),
                                      (Design.BS1116, ["A", "B"], True)):
        definition = load_definition(folders[design])
        with ListeningStore(":memory:") as store:
            p = store.create_participant(definition)
        data = player_data(definition, p, definition.trials_for(p.slot)[0], "trial-0", False)
        assert [s["label"] for s in data["stimuli"]] == labels
        assert (data["reference"] is not None) == reference == data["play_reference"]
        assert data["mode"] == str(design) and data["scale"]["grades"][0][0] == 5
        assert data["scale"]["continuous"] == (design is Design.BS1116)
        text = json.dumps(data)
        assert not any(c in text for c in CONDITIONS) and f': "{REFERENCE}"' not in text  # names no condition


@pytest.mark.parametrize("design", [Design.DCR, Design.BS1116])
def test_dcr_and_bs1116_need_the_reference_played(folders, fresh_copy, design):
    folder = fresh_copy(folders[design])
    definition = load_definition(folder)
    clock = Clock()
    with ListeningStore(folder / STORE_FILE, clock=clock) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        store.mark_delivered(p, 0)
        clock.now_s += 60.0  # time enough to have heard every stimulus (the server credits no more than that)
        ratings = {wire_id(p, s): 4 for s in trial.stimuli}
        payload = {"trial": "trial-0", "ratings": ratings, "events": _played(p, trial.stimuli)}
        assert handle_submission(store, definition, p, 0, payload) == ["play Reference first"]
        payload["events"] = _played(p, presented(trial))
        assert handle_submission(store, definition, p, 0, {**payload, "ratings": {}}) == [
            "rate " + ", ".join(["Sample"] if design is Design.DCR else ["A", "B"])]
        assert handle_submission(store, definition, p, 0, payload) == []
        assert store.done_trials(p) == {0}


def _complete_panel(folder, grade) -> None:
    """Four listeners finish every trial; ``grade(listener, condition, trial)`` gives each grade."""
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        for k in range(4):
            p = store.create_participant(definition)
            for index, trial in enumerate(definition.trials_for(p.slot)):
                scores = {s: grade(k, definition.stimuli[s].condition, index) for s in trial.stimuli}
                assert store.submit(definition, p, index, scores=scores)


def test_analyze_acr_prints_mos_with_cis_and_comparisons(folders, fresh_copy, capsys):
    folder = fresh_copy(folders[Design.ACR])
    mos = {REFERENCE: 5, CONDITIONS[0]: 2, CONDITIONS[1]: 4}
    _complete_panel(folder, lambda k, c, i: max(1, mos[c] - (k + i) % 2))
    assert main(["listen", "analyze", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["design"] == "acr" and report["measure"] == "MOS" and report["assessors"] == 4
    assert list(report["conditions"]) == [REFERENCE, CONDITIONS[1], CONDITIONS[0]]
    with ListeningStore(folder / STORE_FILE) as store:
        grades = [(r.assessor, r.score) for r in store.ratings() if r.condition == REFERENCE]
    per_listener = [np.mean([g for a, g in grades if a == who]) for who in sorted({a for a, _ in grades})]
    ref = report["conditions"][REFERENCE]
    assert ref["n"] == 4 and ref["ratings"] == 8 and ref["mean"] == pytest.approx(np.mean(per_listener))
    assert ref["ci_low"] <= ref["mean"] <= ref["ci_high"] <= 5.0
    assert len(report["comparisons"]) == 3 and all(c["test"] == "mixed" for c in report["comparisons"])
    assert main(["listen", "analyze", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "ACR: MOS per condition, 4 listeners" in text and "95% CI (ratings, P.800)" in text
    assert "comparisons (every pair; mixed model" in text and "5 Excellent" in text


def test_analyze_bs1116_uses_difference_grades_and_post_screens(folders, fresh_copy, capsys):
    folder = fresh_copy(folders[Design.BS1116])

    def grade(k, condition, index):  # listener 3 grades the hidden reference below the signal every time
        if condition == REFERENCE:
            return 2.0 if k == 3 else 4.8
        return {CONDITIONS[0]: 2.5, CONDITIONS[1]: 4.0}[condition]

    _complete_panel(folder, grade)
    assert main(["listen", "analyze", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["measure"] == "difference grade" and report["assessors"] == 3
    assert [e["assessor"] for e in report["excluded"]] == ["L004"]
    assert report["conditions"][CONDITIONS[0]]["mean"] == pytest.approx(2.5 - 4.8)
    assert report["conditions"][CONDITIONS[1]]["mean"] == pytest.approx(4.0 - 4.8)
    assert REFERENCE not in report["conditions"]
    assert main(["listen", "analyze", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "BS.1116: difference grade per condition, 3 listeners after post-screening" in text
    assert "L004: hidden reference graded below the coded signal in 4 of 4 trials (100%)" in text
