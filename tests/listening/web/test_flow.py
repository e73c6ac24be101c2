"""Participant flow without a browser (Streamlit AppTest, store and session functions): drafts, the headphone
check's scoring, --require-training, custom texts, the end page, errors that name no server path, and the
`listen prepare` options on the command line."""

from __future__ import annotations

import json

import pytest

from evalkit.cli import main
from evalkit.listening.model import STORE_FILE, Design, ListenError, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.prepare.headphone import answers_for
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.serve import COMPLETION_ENV, write_launcher
from evalkit.listening.web.session import (
    expected_minutes,
    handle_draft,
    handle_headphone_check,
    headphone_seed,
    presented,
    wire_id,
)
from tests.listening.storage.test_storage import _events, _scores
from tests.listening.web.test_app import _texts


@pytest.fixture(scope="module")
def hp_dir(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "test"
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=1, headphone_check=True,
                                              require_training=True, instructions="## Our own instructions",
                                              consent="Consent: *data kept 5 years*."))
    return out


def _app(folder, **params):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(write_launcher(folder)), default_timeout=30)
    for k, v in params.items():
        at.query_params[k] = v
    return at


def test_draft_is_checked_kept_and_cleared_on_submit(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        a, b = trial.stimuli[:2]
        wire = {s: wire_id(p, s) for s in presented(trial)}  # the browser knows the participant's ids only
        events = [{"stimulus_id": wire[a], "start_s": 0.0, "duration_s": 0.5, "at_ms": 1.0},
                  {"stimulus_id": a, "start_s": 0.0, "duration_s": 0.5, "at_ms": 2.0},  # a stored id: unknown
                  {"stimulus_id": "not-in-trial", "start_s": 0.0, "duration_s": 0.5, "at_ms": 2.0}]
        assert not handle_draft(store, definition, p, 0, {"trial": "trial-1", "ratings": {wire[a]: 5}})
        assert store.draft(p, 0) is None
        assert handle_draft(store, definition, p, 0, {"trial": "trial-0", "ratings": {
            wire[a]: 40, wire[b]: 140, b: 30, "x": 3}, "answer": "Z", "events": events, "position_s": 1.5})
        kept = store.draft(p, 0)  # stored under the test's stimulus ids
        assert kept["ratings"] == {a: 40.0} and kept["answer"] is None and kept["position_s"] == 1.5
        assert [e["stimulus_id"] for e in kept["events"]] == [a]
        store.submit(definition, p, 0, scores=_scores(trial, 1), events=_events(trial))
        assert store.draft(p, 0) is None


def test_headphone_check_scored_on_the_server_first_result_stands(hp_dir, fresh_copy):
    folder = fresh_copy(hp_dir)
    definition = load_definition(folder)
    assert definition.headphone.n_trials == 6
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        right = answers_for(headphone_seed(p))  # the participant's own sequence, drawn on the server
        assert handle_headphone_check(store, definition, p, {"responses": right[:5]}) \
            == ["answer every sound with 1, 2 or 3"]
        assert handle_headphone_check(store, definition, p, {"responses": {"a": 1}}) \
            == ["this page is out of date; reload it"]
        assert store.headphone_result(p) is None
        one_wrong = [right[0] % 3 + 1, *right[1:]]
        assert handle_headphone_check(store, definition, p, {"responses": one_wrong}) == []
        assert store.headphone_result(p) is True  # 5 of 6
        wrong = [v % 3 + 1 for v in right]
        assert handle_headphone_check(store, definition, p, {"responses": wrong}) == []
        assert store.headphone_results() == {p.label: True}
        q = store.create_participant(definition)
        q_right = answers_for(headphone_seed(q))
        two_wrong = [v % 3 + 1 if k < 2 else v for k, v in enumerate(q_right)]
        handle_headphone_check(store, definition, q, {"responses": two_wrong})
        assert store.headphone_results() == {p.label: True, q.label: False}
        assert [r["headphones"] for r in store.progress(definition)] == ["passed", "failed"]


def test_welcome_headphone_then_required_training(hp_dir, fresh_copy):
    folder = fresh_copy(hp_dir)
    definition = load_definition(folder)
    at = _app(folder).run()
    text = _texts(at)
    assert "Our own instructions" in text and "data kept 5 years" in text
    n = len(definition.slots[0])
    assert f"**{n} trials** and takes about **{expected_minutes(definition)} minutes**" in text
    assert "headphone check" in text
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
    at = _app(folder, p=p.token).run()
    assert not at.exception and "Headphone check" in _texts(at)
    with ListeningStore(folder / STORE_FILE) as store:
        store.save_headphone_check(p, False, 2, 6, {})
    at = _app(folder, p=p.token).run()
    assert "Training" in _texts(at)
    assert not [b for b in at.button if b.label.startswith("Skip training")]  # --require-training


def test_end_page_shows_the_completion_code_not_the_link(mushra_dir, fresh_copy, monkeypatch):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    monkeypatch.setenv(COMPLETION_ENV, "PROLIFIC-77")
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        store.mark(p, "trained")
        for index, trial in enumerate(definition.trials_for(p.slot)):
            store.submit(definition, p, index, scores=_scores(trial, 3), events=_events(trial))
        assert store.participant(p.token).finished
        store.save_questionnaire(p, {"age_range": "18–24", "expertise": "naive"})  # the finish page's questions
    text = _texts(_app(folder, p=p.token).run())
    assert "Thank you!" in text and "PROLIFIC-77" in text
    assert "bookmark" not in text and p.token not in text


def test_a_broken_test_folder_shows_no_server_path(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    (folder / "test.json").write_text("{")
    at = _app(folder).run()
    text = _texts(at)
    assert "This test cannot run" in text and str(folder) not in text and "test.json" not in text


def test_prepare_cli_options(run_dir, tmp_path, capsys):
    (tmp_path / "instr.md").write_text("**Listen carefully.**")
    out = tmp_path / "t"
    assert main(["listen", "prepare", "--run", str(run_dir), "--design", "abx", "--items", "1", "--repeats", "2",
                 "--label", "lowpass?cutoff_hz=2000=Narrow", "--instructions", str(tmp_path / "instr.md"),
                 "--excerpt-seconds", "5", "--loudness-lufs", "-26", "--headphone-check", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Narrow = lowpass?cutoff_hz=2000" in printed and "headphone check" in printed
    raw = json.loads((out / "test.json").read_text())
    assert raw["instructions"] == "**Listen carefully.**" and raw["repeats"] == 2 and raw["target_lufs"] == -26.0
    assert raw["labels"]["lowpass?cutoff_hz=2000"] == "Narrow"
    for argv, message in [
        (["--instructions", str(tmp_path / "missing.md")], f"--instructions {tmp_path / 'missing.md'}: cannot read"),
        (["--label", "no-equals-sign"], "--label 'no-equals-sign': expected SPEC=NAME"),
        (["--repeats", "0"], "--repeats: expected an integer >= 1, got 0"),
    ]:
        assert main(["listen", "prepare", "--run", str(run_dir), "--design", "ab", "--out", str(tmp_path / "x"),
                     *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_trial_instructions_from_markdown_or_json(run_dir, tmp_path, capsys):
    from evalkit.listening.model import Trial

    (tmp_path / "all.md").write_text("Listen to the *cymbals*.")
    out = tmp_path / "md"
    assert main(["listen", "prepare", "--run", str(run_dir), "--design", "ab", "--items", "1",
                 "--trial-instructions", str(tmp_path / "all.md"), "--out", str(out)]) == 0
    d = load_definition(out)
    assert d.trial_instructions == {"*": "Listen to the *cymbals*."}
    assert d.instructions_for(d.slots[0][0]) == "Listen to the *cymbals*."
    (tmp_path / "per.json").write_text(json.dumps({"*": "Any.", "clip1.wav": "Clip one."}))
    assert main(["listen", "prepare", "--run", str(run_dir), "--design", "mushra", "--listeners", "1",
                 "--trial-instructions", str(tmp_path / "per.json"), "--out", str(tmp_path / "js")]) == 0
    d = load_definition(tmp_path / "js")
    assert d.instructions_for(Trial("clip1.wav", ())) == "Clip one." and d.instructions_for(Trial("clip0.wav", ())) \
        == "Any."
    capsys.readouterr()
    for content, message in [("{", "not JSON"), ('["a"]', "expected an object"),
                             ('{"nope.wav": "x"}', "'nope.wav' is not an item of the run")]:
        (tmp_path / "bad.json").write_text(content)
        assert main(["listen", "prepare", "--run", str(run_dir), "--design", "ab", "--out", str(tmp_path / "x"),
                     "--trial-instructions", str(tmp_path / "bad.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    raw = json.loads((out / "test.json").read_text())
    raw["trial_instructions"] = {"elsewhere.wav": "x"}
    (out / "test.json").write_text(json.dumps(raw))
    with pytest.raises(ListenError, match="trial_instructions: 'elsewhere.wav' is neither an item of the test"):
        load_definition(out)
