"""The finish page's questionnaire (issue 27, point 7): the researcher's YAML checked at prepare time, answers
checked on the server and stored once per participant, exported, and summarised with the headphone-check results
in the report's listening section and on the admin page."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.listening.model import STORE_FILE, Design, ListenError, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.questionnaire import (
    STANDARD_QUESTIONS,
    Question,
    QuestionType,
    all_questions,
    answers_csv,
    check_answers,
    load_questionnaire,
    parse_questions,
    summarise,
)
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.session import handle_questionnaire
from tests.listening.storage.test_storage import _events, _scores
from tests.listening.web.test_app import _texts

OWN_YAML = """questions:
  - id: native_language
    text: Your native language
    type: text
    required: true
  - id: hearing
    text: Do you have a known hearing impairment?
    type: choice
    choices: ["no", "yes", "not sure"]
    required: true
  - id: hours_per_week
    text: Hours per week you listen to music
    type: number
"""
OWN = (Question("native_language", "Your native language", QuestionType.TEXT, required=True),
       Question("hearing", "Do you have a known hearing impairment?", QuestionType.CHOICE, ("no", "yes", "not sure"),
                required=True),
       Question("hours_per_week", "Hours per week you listen to music", QuestionType.NUMBER))
STANDARD = {"age_range": "25–34", "expertise": "experienced", "headphone_model": "Sennheiser HD 650",
            "comments": None}


def _answers(**changes):
    return STANDARD | {"native_language": "Welsh", "hearing": "no", "hours_per_week": 4} | changes


def test_yaml_file_gives_the_questions_in_order(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(OWN_YAML)
    assert load_questionnaire(path) == OWN
    path.write_text("- {id: age_exact, text: Age, type: number}\n")  # a plain list works too
    assert load_questionnaire(path) == (Question("age_exact", "Age", QuestionType.NUMBER),)


@pytest.mark.parametrize(("raw", "message"), [
    ({"items": []}, r"q.yaml: expected a list of questions \(or questions: \[...\]\), got dict"),
    ([{"id": "x", "text": "X", "type": "text", "colour": "red"}], r"questions\[0\].colour: unknown field"),
    ([{"id": "Bad Id", "text": "X", "type": "text"}], r"questions\[0\].id: expected lower-case letters"),
    ([{"id": "expertise", "text": "X", "type": "text"}], r"questions\[0\].id: 'expertise' is a standard question"),
    ([{"id": "x", "text": " ", "type": "text"}], r"questions\[0\].text: expected non-empty text"),
    ([{"id": "x", "text": "X", "type": "radio"}], r"questions\[0\].type: expected one of choice, text, number, "
                                                  r"got 'radio'"),
    ([{"id": "x", "text": "X", "type": "choice"}], r"questions\[0\].choices: expected a list of at least 2"),
    ([{"id": "x", "text": "X", "type": "choice", "choices": ["a"]}], r"choices: expected a list of at least 2"),
    ([{"id": "x", "text": "X", "type": "choice", "choices": [False, True]}],
     r"questions\[0\].choices\[0\]: expected non-empty text, got False \(quote it: YAML reads yes/no"),
    ([{"id": "x", "text": "X", "type": "choice", "choices": ["a", "a"]}], r"choices: 'a' is listed twice"),
    ([{"id": "x", "text": "X", "type": "number", "choices": ["a", "b"]}],
     r"questions\[0\].choices: only a choice question has choices \(type is number\)"),
    ([{"id": "x", "text": "X", "type": "text", "required": "yes"}], r"questions\[0\].required: expected true or "
                                                                    r"false, got 'yes'"),
    ([{"id": "x", "text": "X", "type": "text"}, {"id": "x", "text": "Y", "type": "text"}],
     r"questions\[1\].id: 'x' is used twice"),
    (["just text"], r"questions\[0\]: expected a mapping"),
])
def test_each_malformed_question_is_named(raw, message):
    with pytest.raises(ListenError, match=message):
        parse_questions(raw, "--questionnaire q.yaml")


def test_unreadable_or_non_yaml_file(tmp_path):
    with pytest.raises(ListenError, match=r"--questionnaire .*missing.yaml: cannot read"):
        load_questionnaire(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("- id: x\n  text: [unclosed\n")
    with pytest.raises(ListenError, match=r"bad.yaml: not YAML \(.* at line 3\)"):
        load_questionnaire(tmp_path / "bad.yaml")


def test_prepare_cli_checks_the_file_first_and_stores_the_questions(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: hearing\n  text: Any hearing loss?\n  type: choice\n  choices: [no, yes]\n")
    out = tmp_path / "t"
    argv = ["listen", "prepare", "--run", str(run_dir), "--design", "ab", "--items", "1", "--out", str(out)]
    assert main([*argv, "--questionnaire", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"evalkit: error: --questionnaire {bad}: questions[0].choices[0]: expected non-empty")
    assert "\n" not in err and not out.exists()  # refused before any stimulus is written
    good = tmp_path / "q.yaml"
    good.write_text(OWN_YAML)
    assert main([*argv, "--questionnaire", str(good)]) == 0
    assert "3 own questions" in capsys.readouterr().out
    assert load_definition(out).questionnaire == OWN
    raw = json.loads((out / "test.json").read_text())
    assert [q["id"] for q in raw["questionnaire"]] == ["native_language", "hearing", "hours_per_week"]
    raw["questionnaire"][1]["type"] = "slider"  # a hand-edited definition is refused at load, naming the field
    (out / "test.json").write_text(json.dumps(raw))
    with pytest.raises(ListenError, match=r"test.json: questions\[1\].type: expected one of choice"):
        load_definition(out)


def test_answers_are_checked_on_the_server():
    questions = all_questions(OWN)
    clean, problems = check_answers(questions, _answers(native_language="  Welsh ", comments=""))
    assert problems == [] and clean["native_language"] == "Welsh" and clean["comments"] is None
    assert clean["hours_per_week"] == 4.0 and clean["hearing"] == "no"
    for answers, problem in [
        (_answers(shoe_size=42), "unknown question shoe_size"),
        (_answers(hearing="maybe"), "Do you have a known hearing impairment?: 'maybe' is not one of its answers"),
        (_answers(age_range="12"), "Your age: '12' is not one of its answers"),
        (_answers(hours_per_week=math.inf), "Hours per week you listen to music: expected a number, got inf"),
        (_answers(hours_per_week=True), "expected a number, got True"),
        (_answers(hours_per_week="4"), "expected a number, got '4'"),
        (_answers(comments="x" * 2001), "Comments on the test (optional): at most 2000 characters, got 2001"),
        (_answers(native_language=" "), "Your native language: an answer is required"),
        (_answers(expertise=None), "Your listening expertise: an answer is required"),
        (_answers(headphone_model=["a"]), "Your headphones (make and model): expected text, got list"),
        ("not a mapping", "this page is out of date; reload it"),
    ]:
        clean, problems = check_answers(questions, answers)
        assert len(problems) == 1 and problems[0].endswith(problem) and clean == {}


def test_stored_once_after_the_last_trial(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        trials = definition.trials_for(p.slot)
        store.submit(definition, p, 0, scores=_scores(trials[0], 1), events=_events(trials[0]))
        assert handle_questionnaire(store, definition, p, STANDARD) == ["finish the trials first"]
        for index in range(1, len(trials)):
            store.submit(definition, p, index, scores=_scores(trials[index], 1), events=_events(trials[index]))
        assert handle_questionnaire(store, definition, p, STANDARD | {"hearing": "no"}) == \
            ["unknown question hearing"]  # this test has no own questions
        assert not store.questionnaire_done(p)
        assert handle_questionnaire(store, definition, p, STANDARD) == []
        assert handle_questionnaire(store, definition, p, STANDARD | {"age_range": "65 or older"}) == []
        assert store.questionnaire_answers() == {p.label: STANDARD}  # the first answers stand
        assert store.questionnaire_done(p)


def test_summary_counts_match_a_hand_count():
    answers = {"L1": {"age_range": "25–34", "expertise": "naive", "headphone_model": "Sony WH-1000XM4",
                      "comments": "too long", "hours_per_week": 2.0},
               "L2": {"age_range": "25–34", "expertise": "expert", "headphone_model": "sony  wh-1000xm4",
                      "comments": None, "hours_per_week": 10.0},
               "L3": {"age_range": "45–54", "expertise": "expert", "headphone_model": "AKG K371",
                      "comments": "fine", "hours_per_week": None},
               "L9": {"age_range": "65 or older", "expertise": "naive"}}  # not in the panel: left out
    summary = summarise(all_questions(OWN), answers, ["L1", "L2", "L3", "L4"])
    rows = {q["id"]: q for q in summary["questions"]}
    assert (summary["assessors"], summary["answered"]) == (4, 3)
    assert [c for c in rows["age_range"]["counts"] if c[1]] == [("25–34", 2), ("45–54", 1), ("no answer", 1)]
    assert dict(rows["expertise"]["counts"]) == {"naive": 1, "experienced": 0, "expert": 2, "prefer not to say": 0,
                                                 "no answer": 1}
    assert rows["headphone_model"]["counts"] == [("Sony WH-1000XM4", 2), ("AKG K371", 1)]
    assert rows["comments"] == {"id": "comments", "text": "Comments on the test (optional)", "type": "text",
                                "answered": 2}
    assert (rows["hours_per_week"]["median"], rows["hours_per_week"]["min"], rows["hours_per_week"]["max"]) == \
        (6.0, 2.0, 10.0)


def test_export_has_one_row_per_participant_and_a_column_per_question():
    text = answers_csv(all_questions(OWN), {"L2": _answers(comments="a, \"quoted\" comment"), "L1": _answers()})
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["assessor", *(q.id for q in STANDARD_QUESTIONS), "native_language", "hearing",
                       "hours_per_week"]
    assert [r[0] for r in rows[1:]] == ["L1", "L2"]
    assert rows[2][4] == 'a, "quoted" comment' and rows[1][4] == "" and rows[1][-1] == "4"


# --- the report's listening section and the admin page ---------------------------------------------------------

LOW, HIGH = "lowpass?cutoff_hz=2000", "lowpass?cutoff_hz=5000"  # the conftest run's conditions


def make_panel_test(run_dir, out):
    """A MUSHRA test with own questions and a headphone check: 4 finished participants (3 answered the
    questionnaire; one failed the check) and one who stopped after 1 trial (the ``panel_dir`` fixture)."""
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=5, headphone_check=True,
                                              questionnaire=OWN))
    definition = load_definition(out)
    rng = np.random.default_rng(0)
    level = {"reference": 100.0, "anchor35": 20.0, "anchor70": 45.0, LOW: 50.0, HIGH: 70.0}
    answers = [_answers(), _answers(age_range="45–54", expertise="expert", headphone_model="AKG K371",
                                    comments="the anchors were easy"),
               _answers(headphone_model="sennheiser hd 650 ")]
    with ListeningStore(out / STORE_FILE) as store:
        for k in range(5):
            p = store.create_participant(definition)
            store.save_headphone_check(p, k != 1, 6 if k != 1 else 3, 6, {})
            trials = definition.trials_for(p.slot)
            for index, trial in enumerate(trials[:1] if k == 4 else trials):
                scores = {s: 100.0 if definition.stimuli[s].condition == "reference" else
                          float(np.clip(level[definition.stimuli[s].condition] + rng.normal(0, 6), 0, 100))
                          for s in trial.stimuli}
                store.submit(definition, p, index, scores=scores, events=_events(trial))
            if k < 3:
                assert handle_questionnaire(store, definition, p, answers[k]) == []
    return out


def _listening_section(run_dir, folder, tmp_path) -> str:
    from evalkit.reports.html import write_report

    html = write_report(run_dir, folder, tmp_path / "report.html", examples=0).read_text()
    return html.split('<section id="listening">')[1].split("</section>")[0]


def test_report_describes_the_panel_and_the_headphone_check(run_dir, panel_dir, tmp_path):
    section = _listening_section(run_dir, panel_dir, tmp_path)
    panel = section.split("<h3>Panel</h3>")[1]
    assert "3 of the 4 assessors in the analysis answered" in panel
    rows = {r.split("</td>")[0].split(">")[-1]: r for r in panel.split("<tr>")[2:]}
    assert "25–34 2, 45–54 1, no answer 1" in rows["Your age"]
    assert "experienced 2, expert 1, no answer 1" in rows["Your listening expertise"]
    assert "Sennheiser HD 650 2, AKG K371 1" in rows["Your headphones (make and model)"]
    assert "<td>1</td><td class=\"txt\">1 answered</td>" in rows["Comments on the test (optional)"]
    assert "median 4 (range 4–4)" in rows["Hours per week you listen to music"]
    check = section.split("<h3>Headphone check</h3>")[1]
    assert "4 passed, 1 failed." in check
    assert check.count("<tr><td") == 5 and "3 of 6" in check
    unfinished = [r for r in check.split("<tr>") if "L005" in r][0]
    assert '>passed</td><td>6 of 6</td><td class="txt">no</td></tr>' in unfinished  # passed, not analysed


def test_admin_page_shows_tables_figures_panel_and_exports_answers(panel_dir, fresh_copy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from evalkit.listening.web.serve import ADMIN_ENV, write_launcher

    folder = fresh_copy(panel_dir)
    monkeypatch.setenv(ADMIN_ENV, "admin-token-123")
    at = AppTest.from_file(str(write_launcher(folder)), default_timeout=60)
    at.query_params["admin"] = "admin-token-123"
    at.run()
    assert not at.exception
    assert not at.code  # the analysis is tables, not a code block
    headers = [s.value for s in at.subheader]
    assert headers[:2] == ["Conditions", "Analysis"] and "Panel (finish-page questionnaire)" in headers
    frames = [d.value for d in at.dataframe]
    means = next(f for f in frames if "95 % CI" in f.columns and "median" in f.columns)
    assert set(means["condition"]) >= {"Reference", "3.5 kHz anchor"}
    left_out = next(f for f in frames if list(f.columns) == ["assessor", "status", "reason"])
    assert list(left_out["assessor"]).count("L005") == 1
    answers = next(f for f in frames if "native_language" in f.columns)
    assert list(answers["assessor"]) == ["L001", "L002", "L003"]
    figures = [caption for image in at.get("image") for caption in image.captions]  # the report's figures
    assert figures == ["MUSHRA mean score with 95 % CI per condition",
                       "MUSHRA mean score with 95 % CI per item and condition",
                       "MUSHRA score distribution per condition"]
    exports = {b.proto.label: b for b in at.get("download_button")}
    assert "Export questionnaire answers (CSV)" in exports and "Export ratings (CSV)" in exports


def test_finish_page_asks_then_thanks(panel_dir, fresh_copy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from evalkit.listening.web.serve import COMPLETION_ENV, write_launcher

    folder = fresh_copy(panel_dir)
    monkeypatch.setenv(COMPLETION_ENV, "CODE-42")
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.participant(store.db.execute("SELECT token FROM participants WHERE label = 'L004'").fetchone()[0])

    def page():
        at = AppTest.from_file(str(write_launcher(folder)), default_timeout=30)
        at.query_params["p"] = p.token
        return at.run()

    at = page()
    assert [t.value for t in at.title] == ["Almost done"] and "CODE-42" not in _texts(at)
    at.radio(key="q-age_range").set_value("18–24")
    at.radio(key="q-expertise").set_value("naive")
    at.text_input(key="q-headphone_model").input("Beyerdynamic DT 770")
    at.radio(key="q-hearing").set_value("not sure")
    at.number_input(key="q-hours_per_week").set_value(12)
    at.button[0].click().run()  # the form's submit: native_language (required) is missing
    assert [e.value for e in at.error] == ["Not saved: Your native language: an answer is required"]
    at.text_input(key="q-native_language").input("Basque")
    at.button[0].click().run()
    assert not at.error
    with ListeningStore(folder / STORE_FILE) as store:
        assert store.questionnaire_answers()["L004"] == {
            "age_range": "18–24", "expertise": "naive", "headphone_model": "Beyerdynamic DT 770", "comments": None,
            "native_language": "Basque", "hearing": "not sure", "hours_per_week": 12.0}
    again = page()
    assert [t.value for t in again.title] == ["Thank you!"] and "CODE-42" in _texts(again)
