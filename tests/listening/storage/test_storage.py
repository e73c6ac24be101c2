"""The listening store: concurrent participants, resume after restart, forged tokens, bad submissions."""

from __future__ import annotations

import json
import re
import sqlite3
import threading

import pytest

from evalkit.listening.model import STORE_FILE, Design, ListenError, PlayEvent, load_definition
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.session import MIN_PLAY_S, handle_submission, player_data, presented, wire_id

N_PARTICIPANTS = 24


def _scores(trial, base: float) -> dict[str, float]:
    return {sid: float((base + 7 * k) % 101) for k, sid in enumerate(trial.stimuli)}


def _events(trial) -> list[PlayEvent]:
    ids = list(trial.stimuli) + ([trial.reference] if trial.reference else [])
    return [PlayEvent(sid, 0.0, 0.5, 10.0 * k) for k, sid in enumerate(ids)]


def test_concurrent_participants_lose_and_duplicate_nothing(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    db = folder / STORE_FILE
    ListeningStore(db).close()  # schema once, as the server does on its first page
    barrier, arrived = threading.Barrier(N_PARTICIPANTS), threading.Barrier(N_PARTICIPANTS)
    outcomes: dict[int, list[bool]] = {}
    errors: list[BaseException] = []

    def participant(k: int) -> None:
        try:
            with ListeningStore(db) as store:
                barrier.wait()
                p = store.create_participant(definition)
                # all arrive before any finishes: a slot's finished listeners outrank its active ones
                # (slots.least_completed), so one finishing early would make the balance below a race
                arrived.wait()
                results = []
                for index, trial in enumerate(definition.trials_for(p.slot)):
                    # every trial is submitted twice (a double click): the second must be refused
                    for _ in range(2):
                        results.append(store.submit(definition, p, index, scores=_scores(trial, k),
                                                    events=_events(trial)))
                outcomes[p.participant_id] = results
        except BaseException as exc:  # collected: a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=participant, args=(k,)) for k in range(N_PARTICIPANTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    n_trials = len(definition.slots[0])
    n_rated = len(definition.slots[0][0].stimuli)
    assert len(outcomes) == N_PARTICIPANTS
    assert all(r == [True, False] * n_trials for r in outcomes.values())
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == N_PARTICIPANTS * n_trials * n_rated
    assert con.execute("SELECT COUNT(*) FROM (SELECT DISTINCT participant_id, trial_index, stimulus_id "
                       "FROM ratings)").fetchone()[0] == N_PARTICIPANTS * n_trials * n_rated
    assert con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == N_PARTICIPANTS * n_trials
    assert con.execute("SELECT COUNT(*) FROM participants WHERE finished IS NOT NULL").fetchone()[0] \
        == N_PARTICIPANTS
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # slots are balanced: 24 participants over 4 slots
    slots = [r[0] for r in con.execute("SELECT COUNT(*) FROM participants GROUP BY slot")]
    assert slots == [N_PARTICIPANTS // len(definition.slots)] * len(definition.slots)
    # each participant's scores are its own (no cross-talk between concurrent writers)
    with ListeningStore(db) as store:
        for token, pid in con.execute("SELECT token, participant_id FROM participants"):
            p = store.participant(token)
            for index, trial in enumerate(definition.trials_for(p.slot)):
                got = dict(con.execute("SELECT stimulus_id, score FROM ratings WHERE participant_id = ? AND "
                                       "trial_index = ?", (pid, index)).fetchall())
                assert len(set(got.values())) == len(trial.stimuli)  # (base + 7k) % 101 distinct within a trial
                assert set(got) == set(trial.stimuli)


def test_resume_after_restart_and_forged_token(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        assert store.submit(definition, p, 0, scores=_scores(trial, 3), events=_events(trial))
    with ListeningStore(folder / STORE_FILE) as store:  # a new process after a crash or restart
        again = store.participant(p.token)
        assert again == p
        assert store.done_trials(again) == {0}
        assert len(p.token) >= 22  # token_urlsafe(16): 128 random bits
        before = sqlite3.connect(folder / STORE_FILE).execute("SELECT COUNT(*) FROM participants").fetchone()
        assert store.participant(p.token[:-1] + ("A" if p.token[-1] != "A" else "B")) is None
        assert store.participant("") is None
        after = sqlite3.connect(folder / STORE_FILE).execute("SELECT COUNT(*) FROM participants").fetchone()
        assert before == after


def test_bad_submissions_write_nothing(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    seconds = [1000.0]  # the server's clock, scripted
    with ListeningStore(folder / STORE_FILE, clock=lambda: seconds[0]) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        store.mark_delivered(p, 0)
        seconds[0] += 60  # a minute on the trial: every claimed second of play is credible
        good = _scores(trial, 1)
        bad_cases = [
            ({**good, trial.stimuli[0]: 101.0}, "not a number in 0..100"),
            ({**good, trial.stimuli[0]: float("nan")}, "not a number in 0..100"),
            ({k: v for k, v in good.items() if k != trial.stimuli[0]}, "missing 1"),
            ({**good, "deadbeef": 50.0}, "unknown 1"),
            ({**good, trial.stimuli[0]: True}, "not a number"),
        ]
        for scores, message in bad_cases:
            with pytest.raises(ListenError, match=message):
                store.submit(definition, p, 0, scores=scores, events=_events(trial))
        with pytest.raises(ListenError, match="out of range"):
            store.submit(definition, p, 99, scores=good)
        with pytest.raises(ListenError, match="not in this trial"):
            store.submit(definition, p, 0, scores=good, events=[PlayEvent("deadbeef", 0, 1, 0)])
        # the session layer (the participant's ids): unplayed, unrated, stale or forged payloads are refused
        wire = {s: wire_id(p, s) for s in presented(trial)}
        events = [dict(e.__dict__, stimulus_id=wire[e.stimulus_id]) for e in _events(trial)]
        stored_ids = {"trial": "trial-0", "ratings": good, "events": [e.__dict__ for e in _events(trial)]}
        assert handle_submission(store, definition, p, 0, stored_ids) == ["this page is out of date; reload it"]
        good = {wire[k]: v for k, v in good.items()}
        assert handle_submission(store, definition, p, 0, {"trial": "trial-1", "ratings": good}) \
            == ["this page is out of date; reload it"]
        problems = handle_submission(store, definition, p, 0, {"trial": "trial-0", "ratings": good, "events": []})
        assert problems and problems[0].startswith("play ")
        short = [dict(e, duration_s=MIN_PLAY_S / 2) for e in events]
        assert handle_submission(store, definition, p, 0, {"trial": "trial-0", "ratings": good, "events": short})
        partial = dict(list(good.items())[1:])
        assert handle_submission(store, definition, p, 0,
                                 {"trial": "trial-0", "ratings": partial, "events": events})[0].startswith("rate ")
        assert handle_submission(store, definition, p, 0, {"trial": "trial-0", "ratings": good,
                                                           "events": [{"stimulus_id": 1}]}) \
            == ["events: malformed play event"]
        con = sqlite3.connect(folder / STORE_FILE)
        for table in ("trials", "ratings", "play_events"):
            assert con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
        assert handle_submission(store, definition, p, 0, {"trial": "trial-0", "ratings": good,
                                                           "events": events}) == []
        assert con.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == len(trial.stimuli)


def test_browser_never_sees_conditions_stored_ids_or_paths(mushra_dir, ab_dir, fresh_copy):
    for folder in (fresh_copy(mushra_dir), fresh_copy(ab_dir)):
        definition = load_definition(folder)
        with ListeningStore(folder / STORE_FILE) as store:
            participants = [store.create_participant(definition) for _ in definition.slots]
        for p in participants:
            for index, trial in enumerate(definition.trials_for(p.slot)):
                order = list(p.orders[index])
                text = json.dumps(player_data(definition, p, trial, f"trial-{index}", False, order))
                for name in [*definition.conditions.values(), *definition.conditions, "anchor", *definition.stimuli]:
                    assert name not in text  # no condition and no stored stimulus id
                assert str(folder) not in text and definition.run_dir not in text
                assert "lowpass" not in text and ".sqlite" not in text
                data = json.loads(text)
                shown = [trial.stimuli[k] for k in order]
                assert [s["id"] for s in data["stimuli"]] == [wire_id(p, s) for s in shown]
                assert re.fullmatch(r"app/static/[0-9a-f]{32}\.wav", data["bundle"])  # one URL for the trial
                assert "url" not in text
                # rated stimuli carry neutral labels only; the open reference is the one labelled "Reference"
                assert [s["label"] for s in data["stimuli"]] == (
                    [str(k + 1) for k in range(len(trial.stimuli))] if definition.design is Design.MUSHRA
                    else ["A", "B"])
                assert data["reference"] is None or data["reference"]["id"] == wire_id(p, trial.reference)


def test_ab_answers_map_to_conditions(ab_dir, fresh_copy):
    folder = fresh_copy(ab_dir)
    definition = load_definition(folder)
    assert definition.design is Design.AB
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        with pytest.raises(ListenError, match="answer 'C'"):
            store.submit(definition, p, 0, answer="C")
        assert store.submit(definition, p, 0, answer="B", events=_events(trial))
        (choice,) = store.choices()
        assert choice.chosen == definition.stimuli[trial.stimuli[1]].condition
        assert (choice.condition_a, choice.condition_b) == definition.pairs[0]
