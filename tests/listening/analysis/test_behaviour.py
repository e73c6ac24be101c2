"""Listening behaviour (issue 27, point 5): seconds heard per stimulus and time on trial from the server's clock
(a scripted clock here), the clamp of the player's claims, `listen analyze --min-played`, the per-assessor and
per-condition summary, the export's listening columns and the report's behaviour tables."""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import statistics

import pytest

from evalkit.cli import main
from evalkit.listening.analysis.behaviour import credited_seconds
from evalkit.listening.analysis.ratings_csv import export_csv, load_ratings_csv
from evalkit.listening.analysis.report import analyze_test_dir
from evalkit.listening.model import OPEN_REFERENCE, STORE_FILE, Design, PlayEvent, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.session import handle_submission, presented, wire_id
from tests.listening.storage.test_storage import _scores


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, now_s: float = 1_000_000.0):
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def _length_s(definition, sid: str) -> float:
    s = definition.stimuli[sid]
    return s.samples / s.sample_rate


def _play(definition, trial, fraction: dict[str, float] | None = None, default: float = 1.0) -> list[PlayEvent]:
    """One play event per stimulus of ``trial`` (open reference included) covering ``fraction`` of its length."""
    fraction = fraction or {}
    return [PlayEvent(sid, 0.0, fraction.get(definition.stimuli[sid].condition, default) * _length_s(definition, sid),
                      100.0 * k) for k, sid in enumerate(presented(trial))]


def _rated(definition, trial, base: float) -> dict[str, float]:
    """Scores that pass BS.1534-3 post-screening: 100 for the hidden reference."""
    return {sid: 100.0 if definition.stimuli[sid].condition == "reference" else float((base + 13 * k) % 80)
            for k, sid in enumerate(trial.stimuli)}


def test_credited_seconds_never_exceed_the_time_the_trial_was_open():
    claims = {"a": 4.0, "b": 2.0, "c": 0.0}
    assert credited_seconds(claims, 10.0) == claims  # believable: kept as claimed
    clamped = credited_seconds(claims, 3.0)
    assert sum(clamped.values()) == pytest.approx(3.0)
    assert clamped["a"] / clamped["b"] == pytest.approx(2.0) and clamped["c"] == 0.0  # scaled together
    assert credited_seconds(claims, float("nan")) == {"a": 0.0, "b": 0.0, "c": 0.0}  # never delivered


def test_a_scripted_fast_submission_is_refused_and_an_honest_one_timed(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    clock = Clock()
    with ListeningStore(folder / STORE_FILE, clock=clock) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        wire = {s: wire_id(p, s) for s in presented(trial)}
        ratings = {wire[k]: v for k, v in _scores(trial, 1).items()}
        made_up = [{"stimulus_id": wire[s], "start_s": 0.0, "duration_s": 10.0, "at_ms": 10.0 * k}
                   for k, s in enumerate(presented(trial))]
        payload = {"trial": "trial-0", "ratings": ratings, "events": made_up}
        assert handle_submission(store, definition, p, 0, payload)[0].startswith("play ")  # never delivered
        store.mark_delivered(p, 0)
        clock.now_s += 0.07  # 0.07 s after delivery, claiming 10 s per stimulus
        assert handle_submission(store, definition, p, 0, payload)[0].startswith("play ")
        assert store.done_trials(p) == set()
        clock.now_s += 0.93
        store.mark_delivered(p, 0)  # a reload delivers the trial again: the first delivery counts
        clock.now_s += 59.0
        honest = [dict(e, duration_s=0.5) for e in made_up]
        assert handle_submission(store, definition, p, 0, dict(payload, events=honest)) == []
    (record,) = ListeningStore(folder / STORE_FILE).listening(definition)
    assert record.time_on_trial_s == pytest.approx(60.0)
    assert record.claimed_s == pytest.approx(0.5 * len(presented(trial)))
    assert {s.stimulus_id for s in record.stimuli} == set(presented(trial))
    for s in record.stimuli:
        assert s.listened_s == pytest.approx(0.5)
        assert s.length_s == pytest.approx(_length_s(definition, s.stimulus_id))
        assert s.fraction == pytest.approx(0.5 / s.length_s)
    assert not record.clamped


def test_claims_beyond_the_elapsed_time_are_scaled_down_to_it(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    clock = Clock()
    with ListeningStore(folder / STORE_FILE, clock=clock) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        store.mark_delivered(p, 0)
        clock.now_s += 2.0
        events = _play(definition, trial, default=3.0)  # 3 lengths of every stimulus in 2 s
        store.submit(definition, p, 0, scores=_scores(trial, 1), events=events)
        (record,) = store.listening(definition)
    claimed = {e.stimulus_id: e.duration_s for e in events}
    assert record.clamped and record.claimed_s == pytest.approx(sum(claimed.values()))
    assert sum(s.listened_s for s in record.stimuli) == pytest.approx(2.0)
    for s in record.stimuli:
        assert s.listened_s == pytest.approx(claimed[s.stimulus_id] * 2.0 / sum(claimed.values()))
    raw = sqlite3.connect(folder / STORE_FILE).execute("SELECT SUM(duration_s) FROM play_events").fetchone()[0]
    assert raw == pytest.approx(sum(claimed.values()))  # the player's report itself is kept as sent


@pytest.fixture
def timed_dir(run_dir, tmp_path):
    """A MUSHRA folder (2 items, 3 slots): L001 hears everything fully (30 s and 50 s on its trials), L002 too but
    the 3.5 kHz anchor only 30 % in its second trial, L003 claims 3 lengths of everything within 2 s per trial."""
    out = tmp_path / "t"
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=3))
    definition = load_definition(out)
    clock = Clock()
    plan = {0: ((30.0, {}), (50.0, {})), 1: ((30.0, {}), (50.0, {"anchor35": 0.3})), 2: ((2.0, {}), (2.0, {}))}
    with ListeningStore(out / STORE_FILE, clock=clock) as store:
        for k in range(3):
            p = store.create_participant(definition)
            for index, trial in enumerate(definition.trials_for(p.slot)):
                store.mark_delivered(p, index)
                seconds, fraction = plan[k][index]
                clock.now_s += seconds
                events = _play(definition, trial, fraction, default=3.0 if k == 2 else 1.0)
                store.submit(definition, p, index, scores=_rated(definition, trial, k + index), events=events)
    return out


def test_analyze_summarises_behaviour_and_min_played_leaves_trials_out(timed_dir, capsys):
    definition = load_definition(timed_dir)
    all_trials = analyze_test_dir(timed_dir, "t")
    people = {p["assessor"]: p for p in all_trials["behaviour"]["participants"]}
    n = len(definition.slots[0][0].stimuli) + 1  # rated signals and the open reference
    assert people["L001"] == {"assessor": "L001", "trials": 2, "median_time_on_trial_s": pytest.approx(40.0),
                              "played_fully_share": 1.0, "clamped_trials": 0}
    assert people["L002"]["median_time_on_trial_s"] == pytest.approx(statistics.median([30.0, 50.0]))
    assert people["L002"]["played_fully_share"] == pytest.approx((2 * n - 1) / (2 * n))
    assert people["L003"]["median_time_on_trial_s"] == pytest.approx(2.0)
    assert people["L003"]["played_fully_share"] == 0.0 and people["L003"]["clamped_trials"] == 2
    conditions = {c["condition"]: c for c in all_trials["behaviour"]["conditions"]}
    assert set(conditions) == {OPEN_REFERENCE, "reference", *definition.conditions}
    assert conditions["anchor35"]["stimuli"] == 6 and conditions["anchor35"]["played_fully_share"] == 0.5
    assert conditions["anchor70"]["played_fully_share"] == pytest.approx(4 / 6)
    assert all_trials["behaviour"]["excluded_trials"] == [] and all_trials["assessors"] == 3

    assert main(["listen", "analyze", str(timed_dir), "--test", "t", "--min-played", "80", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    excluded = report["behaviour"]["excluded_trials"]
    assert [(e["assessor"], e["trial"]) for e in excluded] == [("L002", 1), ("L003", 0), ("L003", 1)]
    anchor = definition.labels.get("anchor35", "anchor35")
    assert excluded[0]["reason"] == f"{anchor} played 30 % of its length (< 80 %)"
    assert "played 33 %" in excluded[1]["reason"]  # 2 s shared by 6 stimuli of 1 s
    assert report["assessors"] == 2  # L003 has no trial left
    assert sum(s["n"] for s in report["items"][definition.slots[1][1].item].values()) \
        < sum(s["n"] for s in all_trials["items"][definition.slots[1][1].item].values())
    assert main(["listen", "analyze", str(timed_dir), "--test", "t", "--min-played", "80"]) == 0
    text = capsys.readouterr().out
    assert "--min-played 80: 3 of 6 trials excluded:" in text
    assert f"L002 trial 2 ({definition.slots[1][1].item}): {anchor} played 30 % of its length (< 80 %)" in text
    assert "L001: 2 trials, median 40.0 s on a trial, 100 % of stimuli played fully" in text


def test_min_played_needs_a_test_folder_and_a_percentage(timed_dir, tmp_path, capsys):
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("assessor,item,condition,score\nA,i,c,50\n")
    assert main(["listen", "analyze", "--ratings", str(csv_path), "--min-played", "80"]) == 2
    assert "--min-played needs a test folder" in capsys.readouterr().err
    assert main(["listen", "analyze", str(timed_dir), "--min-played", "-5"]) == 2
    assert "--min-played -5: expected a percentage of 0 or more" in capsys.readouterr().err


def test_export_has_the_listening_columns_and_reads_back(timed_dir, tmp_path):
    definition = load_definition(timed_dir)
    with ListeningStore(timed_dir / STORE_FILE) as store:
        rows = store.export_rows(definition)
        ratings = store.ratings()
        trials = {(t.assessor, t.trial_index): t for t in store.listening(definition)}
    text = export_csv(rows)
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == ["assessor", "item", "condition", "score", "trial", "time_on_trial_s", "listened_s",
                              "listened_fraction"]
    assert len(table) == len(ratings)
    for row in table:
        t = trials[(row["assessor"], int(row["trial"]) - 1)]
        assert t.item == row["item"]
        assert float(row["time_on_trial_s"]) == pytest.approx(t.time_on_trial_s)
        (heard,) = [s for s in t.stimuli if s.condition == row["condition"]]
        assert float(row["listened_s"]) == pytest.approx(heard.listened_s)
        assert float(row["listened_fraction"]) == pytest.approx(heard.listened_s / heard.length_s)
    path = tmp_path / "export.csv"
    path.write_text(text)
    assert load_ratings_csv(path) == ratings  # `--ratings` reads the export as it is (same order)


def test_ab_export_names_the_sides_heard(ab_dir, fresh_copy):
    folder = fresh_copy(ab_dir)
    definition = load_definition(folder)
    clock = Clock()
    with ListeningStore(folder / STORE_FILE, clock=clock) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        store.mark_delivered(p, 0)
        clock.now_s += 12.0
        a, b = trial.stimuli
        store.submit(definition, p, 0, answer="A", events=[PlayEvent(a, 0.0, 0.25, 1.0), PlayEvent(b, 0.0, 0.5, 2.0),
                                                           PlayEvent(a, 0.25, 0.25, 3.0)])
        (row,) = store.export_rows(definition)
    assert row["trial"] == 1 and row["time_on_trial_s"] == pytest.approx(12.0)
    assert row["listened_a_s"] == pytest.approx(0.5) and row["listened_b_s"] == pytest.approx(0.5)
    assert row["min_listened_fraction"] == pytest.approx(0.5 / _length_s(definition, a))
    assert row["chosen"] == definition.stimuli[a].condition


def test_report_shows_the_behaviour_tables(timed_dir):
    from evalkit.reports.listening_section import behaviour_context

    analysis = analyze_test_dir(timed_dir, "t", min_played_pct=80)
    ctx = behaviour_context(analysis["behaviour"])
    assert [(p["assessor"], p["time"], p["full"], p["clamped"]) for p in ctx["participants"]] == [
        ("L001", "40.0", "100 %", 0), ("L002", "40.0", f"{100 * 11 / 12:.0f} %", 0), ("L003", "2.0", "0 %", 2)]
    assert len(ctx["excluded"]) == 3 and ctx["min_played"] == 80


def test_trials_without_a_server_timing_never_count_as_claiming_more_than_their_time():
    from evalkit.listening.analysis.behaviour import StimulusListening, TrialListening, summary

    untimed = TrialListening("L001", 0, "item0", math.nan, 12.0, ())
    timed = TrialListening("L001", 1, "item0", 2.0, 12.0, (StimulusListening("s1", "c", 2.0, 3.0),))
    assert not untimed.clamped and timed.clamped  # 12 s claimed in a trial open for 2 s
    out = summary([untimed, timed]).as_json()
    assert out["participants"][0]["clamped_trials"] == 1 and out["timed_trials"] == 1 and out["trials"] == 2


def test_the_report_says_when_no_trial_has_a_server_timing():
    from evalkit.listening.analysis.behaviour import TrialListening, summary
    from evalkit.reports.listening_section import behaviour_context

    ctx = behaviour_context(summary([TrialListening("L001", 0, "item0", math.nan, 5.0, ())]).as_json())
    assert ctx["timed"] == 0 and ctx["participants"][0]["clamped"] == 0
