"""Design slots (issue 27, point 6): taken when the first trial starts, never at consent; released after an idle
time so that completed panels stay balanced; a returning participant continues in its slot while nobody took it,
else starts afresh in a new one (its old trials kept, never counted). Time is a scripted clock: no sleeps."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from evalkit.cli import main
from evalkit.listening.model import STORE_FILE, ListenError, load_definition
from evalkit.listening.storage import ListeningStore
from evalkit.listening.storage.slots import SlotHolder, least_completed, may_continue
from evalkit.listening.web.serve import SLOT_IDLE_ENV, write_launcher
from tests.listening.analysis.test_behaviour import Clock
from tests.listening.storage.test_storage import _events, _scores

IDLE_S = 30 * 60.0


def _finish(store, definition, p, upto: int | None = None) -> None:
    trials = definition.trials_for(p.slot)
    for index in range(len(trials) if upto is None else upto):
        store.submit(definition, p, index, scores=_scores(trials[index], index), events=_events(trials[index]))


def _start(store, definition, idle_s: float = IDLE_S):
    """A participant who consents, and whose first trial starts."""
    p = store.create_participant(definition, with_slot=False)
    return store.hold_slot(definition, p, idle_s, assign=True)


def test_least_completed_counts_finished_then_active_and_ignores_the_released():
    done, active, released = (SlotHolder(1, 0, 0.0, 0.0, True), SlotHolder(2, 1, 0.0, 90.0, False),
                              SlotHolder(3, 2, 0.0, 10.0, False))
    now, idle = 100.0, 60.0
    assert least_completed(3, [done, active, released], now, idle) == 2  # slot 2's holder is gone
    assert least_completed(3, [done, active], now, idle) == 2
    assert least_completed(2, [done, active], now, idle) == 1  # (0 finished, 1 active) before (1, 0)
    assert may_continue(released, [done, active], now, idle)  # nobody took slot 2 meanwhile
    taker = SlotHolder(4, 2, 75.0, 95.0, False)  # claimed at 75 s, after the release at 10 + 60 s
    assert not may_continue(released, [done, active, taker], now, idle)
    assert may_continue(released, [SlotHolder(4, 2, 75.0, 20.0, False)], now + 60, idle)  # the taker left too


def test_consent_takes_no_slot_the_first_trial_does(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    clock = Clock()
    with ListeningStore(folder / STORE_FILE, clock=clock) as store:
        visitors = [store.create_participant(definition, with_slot=False) for _ in range(3)]  # consent only
        assert [v.slot for v in visitors] == [None] * 3
        with pytest.raises(ListenError, match="no listener slot yet"):
            store.submit(definition, visitors[0], 0, scores={})
        p = _start(store, definition)
        assert p.slot == 0 and len(p.orders) == len(definition.trials_for(0))
        assert store.hold_slot(definition, p, IDLE_S, assign=True).slot == 0  # a rerun keeps it
        q = store.hold_slot(definition, visitors[2], IDLE_S, assign=False)  # a training page: still none
        assert q.slot is None
        assert [r["slot"] for r in store.progress(definition)] == [None, None, None, 0]


def _arrivals(folder, definition, idle_s: float) -> Counter:
    """10 participants arriving 7.5 min apart; the 3rd and the 7th abandon after one trial. Finished per slot."""
    clock = Clock()
    with ListeningStore(folder / STORE_FILE, clock=clock) as store:
        for k in range(10):
            p = _start(store, definition, idle_s)
            _finish(store, definition, p, upto=1 if k in (2, 6) else None)
            clock.now_s += IDLE_S / 4
        return Counter(r["slot"] for r in store.progress(definition) if r["finished"] is not None)


def test_abandoned_slots_are_released_and_completed_panels_stay_balanced(mushra_dir, fresh_copy):
    definition = load_definition(mushra_dir)
    slots = range(len(definition.slots))
    assert len(slots) == 4
    finished = _arrivals(fresh_copy(mushra_dir), definition, IDLE_S)
    # counting every participant of a slot for ever (the rule before) gave [3, 3, 0, 2]: both abandoned
    # sessions held slot 2, which no finished participant ever had
    assert [finished[s] for s in slots] == [2, 2, 2, 2]


def test_a_released_slot_wins_over_one_held_by_an_active_participant(mushra_dir, fresh_copy):
    definition = load_definition(mushra_dir)
    clock = Clock()
    with ListeningStore(fresh_copy(mushra_dir) / STORE_FILE, clock=clock) as store:
        people = [_start(store, definition) for _ in range(len(definition.slots))]  # slots 0-3, all unfinished
        clock.now_s += IDLE_S  # the last one stops here, exactly at its idle limit: still holding slot 3
        for p in people[:-1]:
            store.hold_slot(definition, p, IDLE_S, assign=True)
        assert _start(store, definition).slot == 0  # every slot has one active participant: the lowest
        clock.now_s += 1  # now the last one has released slot 3
        assert _start(store, definition).slot == 3


def test_a_returning_participant_keeps_a_free_slot_or_starts_afresh_in_a_new_one(hp_like_dir, fresh_copy):
    folder = fresh_copy(hp_like_dir)
    definition = load_definition(folder)
    clock = Clock()
    with ListeningStore(folder / STORE_FILE, clock=clock) as store:
        a = _start(store, definition)
        store.save_headphone_check(a, True, 6, 6, {"method": "test"})
        store.mark(a, "consented")
        store.mark(a, "trained")
        _finish(store, definition, a, upto=1)
        clock.now_s += IDLE_S + 1  # a leaves; nobody takes its slot
        back = store.hold_slot(definition, a, IDLE_S, assign=True)
        assert (back.participant_id, back.slot, store.done_trials(back)) == (a.participant_id, a.slot, {0})

        clock.now_s += IDLE_S + 1  # a leaves again, and this time b takes its slot
        others = [_start(store, definition) for _ in range(len(definition.slots))]
        assert others[0].slot == a.slot  # the released slot is the least completed (no finished, no active)
        again = store.hold_slot(definition, a, IDLE_S, assign=True)
        assert again.participant_id != a.participant_id and again.token == a.token
        assert again.label != a.label and again.secret != a.secret  # new ids and bundles on the wire
        assert store.done_trials(again) == set() and again.trained and again.consented
        assert store.headphone_result(again) is True  # consent, training and screening carry over
        assert store.participant(a.token) == again  # the link the participant kept now opens the new record
        rows = {r["assessor"]: r for r in store.progress(definition)}
        assert rows[a.label]["continued_as"] == again.label and rows[a.label]["done"] == 1
        assert a.label not in {r.assessor for r in store.ratings()}  # its trial is kept but never counted
        assert a.label not in {t.assessor for t in store.listening(definition)}
        assert a.label not in {r["assessor"] for r in store.export_rows(definition)}
        counted = sqlite3.connect(folder / STORE_FILE).execute(
            "SELECT COUNT(*) FROM ratings WHERE participant_id = ?", (a.participant_id,)).fetchone()[0]
        assert counted == len(definition.trials_for(a.slot)[0].stimuli)  # nothing deleted


@pytest.fixture(scope="module")
def hp_like_dir(run_dir, tmp_path_factory):
    from evalkit.listening.model import Design
    from evalkit.listening.prepare.design import PrepareOptions, prepare_test

    out = tmp_path_factory.mktemp("slots") / "test"
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=3, headphone_check=True))
    return out


def test_the_app_assigns_the_slot_at_the_first_trial(mushra_dir, fresh_copy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    folder = fresh_copy(mushra_dir)
    monkeypatch.setenv(SLOT_IDLE_ENV, "30")
    at = AppTest.from_file(str(write_launcher(folder)), default_timeout=30).run()
    at.checkbox(key="consent").check().run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        assert [r["slot"] for r in store.progress(definition)] == [None]  # consent and training: no slot
    next(b for b in at.button if b.label.startswith("Skip training")).click().run()
    assert not at.exception and at.get("progress")
    with ListeningStore(folder / STORE_FILE) as store:
        assert [r["slot"] for r in store.progress(definition)] == [0]
        trial_times = store.db.execute("SELECT trial_index, delivered_s FROM trial_times").fetchall()
    assert [t[0] for t in trial_times] == [0] and trial_times[0][1] > 0  # the first trial's delivery, timed


def test_serve_checks_the_idle_time(mushra_dir, capsys):
    assert main(["listen", "serve", str(mushra_dir), "--slot-idle-minutes", "0"]) == 2
    assert "--slot-idle-minutes 0: expected a positive number of minutes" in capsys.readouterr().err


def test_a_store_from_before_keeps_its_participants_slots(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p, q = store.create_participant(definition), store.create_participant(definition)
    con = sqlite3.connect(folder / STORE_FILE)
    for column in ("slot_at_s", "seen_s", "continued_as"):  # as a store written before slots were released
        con.execute(f"ALTER TABLE participants DROP COLUMN {column}")
    con.commit()
    con.close()
    with ListeningStore(folder / STORE_FILE) as store:
        assert (store.participant(p.token).slot, store.participant(q.token).slot) == (0, 1)
        assert [r["slot"] for r in store.progress(definition)] == [0, 1]
