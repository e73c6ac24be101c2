"""Listening-test store: SQLite in WAL mode, one transaction per submitted trial (ratings + play events).

Every participant has an unguessable token (``secrets.token_urlsafe``) that resumes the session after a refresh,
a crash or a server restart; all reads by the app are keyed by that token's participant, so a participant sees
only its own session. A trial is stored once: a second submit of the same trial (double click, two tabs) is
refused by the primary key, never duplicated. Condition names are resolved here, on the server. A trial in progress
is kept as a draft (ratings, answer and play events so far), so a refresh restores it; the draft is deleted when
the trial is stored. The headphone check's result is one row per participant (the first result stands). Each
participant also has a random ``secret`` that never leaves the server: the ids, bundle names and headphone sequence
its browser gets are derived from it (:mod:`evalkit.listening.web.session`).

Times that matter to the analysis come from the server's clock (``clock``, injectable for tests), in seconds since the
epoch: when a trial was first delivered and submitted (:mod:`evalkit.listening.analysis.behaviour`: time on trial and
seconds listened per stimulus, stored with the trial), when a participant took its design slot and when it was last seen
(:mod:`evalkit.listening.storage.slots`: a participant takes a slot when its first trial starts and loses it after an
idle time).
"""

from __future__ import annotations

import json
import math
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import evalkit.listening.storage.slots as slotting
from evalkit.listening.analysis.behaviour import StimulusListening, TrialListening, credited_seconds
from evalkit.listening.model import (
    OPEN_REFERENCE,
    RATED_DESIGNS,
    SCALES,
    Choice,
    Design,
    ListenError,
    PlayEvent,
    Rating,
    TestDefinition,
    Trial,
    on_scale,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS participants (
    participant_id INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT UNIQUE NOT NULL, label TEXT UNIQUE,
    slot INTEGER NOT NULL, orders TEXT NOT NULL, created TEXT DEFAULT CURRENT_TIMESTAMP,
    consented TEXT, trained TEXT, finished TEXT, secret TEXT, slot_at_s REAL, seen_s REAL, continued_as TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    participant_id INTEGER NOT NULL REFERENCES participants, trial_index INTEGER NOT NULL, item TEXT NOT NULL,
    design TEXT NOT NULL, submitted TEXT DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (participant_id, trial_index)
);
CREATE TABLE IF NOT EXISTS ratings (
    participant_id INTEGER NOT NULL, trial_index INTEGER NOT NULL, stimulus_id TEXT NOT NULL, item TEXT NOT NULL,
    condition TEXT NOT NULL, score REAL NOT NULL CHECK (score >= 0 AND score <= 100),
    PRIMARY KEY (participant_id, trial_index, stimulus_id)
);
CREATE TABLE IF NOT EXISTS choices (
    participant_id INTEGER NOT NULL, trial_index INTEGER NOT NULL, item TEXT NOT NULL, condition_a TEXT NOT NULL,
    condition_b TEXT NOT NULL, answer TEXT NOT NULL, chosen TEXT, x TEXT,
    PRIMARY KEY (participant_id, trial_index)
);
CREATE TABLE IF NOT EXISTS drafts (
    participant_id INTEGER NOT NULL, trial_index INTEGER NOT NULL, data TEXT NOT NULL,
    updated TEXT DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (participant_id, trial_index)
);
CREATE TABLE IF NOT EXISTS headphone_checks (
    participant_id INTEGER PRIMARY KEY, passed INTEGER NOT NULL, correct INTEGER, n_trials INTEGER, details TEXT,
    at TEXT DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS questionnaire (
    participant_id INTEGER PRIMARY KEY, answers TEXT NOT NULL, at TEXT DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS play_events (
    participant_id INTEGER NOT NULL, trial_index INTEGER NOT NULL, seq INTEGER NOT NULL, stimulus_id TEXT NOT NULL,
    start_s REAL, duration_s REAL, at_ms REAL, PRIMARY KEY (participant_id, trial_index, seq)
);
CREATE TABLE IF NOT EXISTS trial_times (
    participant_id INTEGER NOT NULL, trial_index INTEGER NOT NULL, delivered_s REAL, submitted_s REAL,
    claimed_s REAL, PRIMARY KEY (participant_id, trial_index)
);
CREATE TABLE IF NOT EXISTS listened (
    participant_id INTEGER NOT NULL, trial_index INTEGER NOT NULL, stimulus_id TEXT NOT NULL,
    listened_s REAL NOT NULL, length_s REAL NOT NULL, PRIMARY KEY (participant_id, trial_index, stimulus_id)
);
"""

ANSWERS = ("A", "B", "none")  # AB: preferred side or no preference; ABX: the side judged equal to X


@dataclass(frozen=True)
class Participant:
    participant_id: int
    token: str
    label: str  # what analyses and the admin page call the assessor (the token stays secret)
    slot: int | None  # None until its first trial starts (:meth:`ListeningStore.hold_slot`)
    orders: tuple[tuple[int, ...], ...]  # per trial of its slot: display order of its stimuli (MUSHRA), fresh
    consented: bool
    trained: bool
    finished: bool
    secret: str  # 256 random bits (hex), server-side only: the key of everything per participant on the wire


class ListeningStore:
    """One connection to a test's SQLite file (open one per thread or process); ``clock``: the server's time in
    seconds since the epoch."""

    def __init__(self, path: str | Path, timeout_s: float = 30.0, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self.db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(participants)")}
        if "secret" not in columns:  # a store written before per-participant secrets
            try:
                self.db.execute("ALTER TABLE participants ADD COLUMN secret TEXT")
            except sqlite3.OperationalError as exc:  # another connection added it first
                if "duplicate column" not in str(exc):
                    raise
        if "seen_s" not in columns:
            self._add_slot_columns()

    def _add_slot_columns(self) -> None:
        """A store written before slots were taken at the first trial: its participants hold their slots since
        they were created."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for column in ("slot_at_s REAL", "seen_s REAL", "continued_as TEXT"):
                self.db.execute(f"ALTER TABLE participants ADD COLUMN {column}")
            self.db.execute("UPDATE participants SET slot_at_s = CAST(strftime('%s', created) AS REAL), "
                            "seen_s = CAST(strftime('%s', created) AS REAL)")
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # another connection added them first
            self.db.execute("ROLLBACK")
            if "duplicate column" not in str(exc):
                raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ListeningStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- participants -----------------------------------------------------------------------------------------

    def create_participant(self, definition: TestDefinition, *, with_slot: bool = True,
                           idle_s: float = 60 * slotting.SLOT_IDLE_MINUTES) -> Participant:
        """A new participant with a fresh token and secret; ``with_slot``: it takes the least-completed listener
        slot now (:func:`evalkit.listening.storage.slots.least_completed`; ``idle_s``: the idle time after which an
        unfinished participant no longer holds its slot), with a fresh random stimulus order per trial; else it
        has no slot until :meth:`hold_slot` gives it one (the app: when its first trial starts)."""
        token = secrets.token_urlsafe(16)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            pid = self._insert_participant(token, secrets.token_hex(32))
            if with_slot:
                self._claim(definition, pid, idle_s)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        found = self.participant(token)
        assert found is not None  # just inserted
        return found

    def _insert_participant(self, token: str, secret: str) -> int:
        cur = self.db.execute("INSERT INTO participants (token, slot, orders, secret, seen_s) "
                              "VALUES (?, 0, '[]', ?, ?)", (token, secret, self.clock()))
        pid = int(cur.lastrowid)
        self.db.execute("UPDATE participants SET label = ? WHERE participant_id = ?", (f"L{pid:03d}", pid))
        return pid

    def _holders(self) -> list[slotting.SlotHolder]:
        return [slotting.SlotHolder(r[0], r[1], r[2], r[3] if r[3] is not None else r[2], r[4] is not None)
                for r in self.db.execute("SELECT participant_id, slot, slot_at_s, seen_s, finished FROM participants "
                                         "WHERE slot_at_s IS NOT NULL AND continued_as IS NULL")]

    def _claim(self, definition: TestDefinition, pid: int, idle_s: float) -> None:
        """Give participant ``pid`` the least-completed slot and fresh display orders (inside a transaction)."""
        now = self.clock()
        others = [h for h in self._holders() if h.participant_id != pid]
        slot = slotting.least_completed(len(definition.slots), others, now, idle_s)
        shuffler = random.Random(secrets.randbits(64))
        orders = []
        for trial in definition.trials_for(slot):
            order = list(range(len(trial.stimuli)))
            if definition.design is Design.MUSHRA:
                shuffler.shuffle(order)
            orders.append(order)
        self.db.execute("UPDATE participants SET slot = ?, orders = ?, slot_at_s = ?, seen_s = ? "
                        "WHERE participant_id = ?", (slot, json.dumps(orders), now, now, pid))

    def hold_slot(self, definition: TestDefinition, participant: Participant, idle_s: float, *,
                  assign: bool) -> Participant:
        """Record that ``participant`` is active now and keep its slot (``assign``: give it one if it has none).

        A participant idle for more than ``idle_s`` seconds has released its slot. It takes it back if nobody
        who still holds that slot claimed it meanwhile (:func:`evalkit.listening.storage.slots.may_continue`); otherwise
        it continues as a new participant (same token, consent, training and headphone result; a new label, a
        new secret, the least-completed slot, no trials done) and the old record, with the trials it stored,
        stays as a released assessor that no analysis or export counts (``continued_as`` names the new one).

        Returns:
            The participant as it is now (possibly a new record, or with its new slot).
        """
        pid = participant.participant_id
        self.db.execute("BEGIN IMMEDIATE")
        try:
            now = self.clock()
            row = self.db.execute("SELECT slot, slot_at_s, seen_s, finished, continued_as FROM participants "
                                  "WHERE participant_id = ?", (pid,)).fetchone()
            if row is None or row[4] is not None:  # superseded meanwhile: its token moved on
                self.db.execute("ROLLBACK")
                return self.participant(participant.token) or participant
            if row[1] is None:
                if assign:
                    self._claim(definition, pid, idle_s)
                else:
                    self.db.execute("UPDATE participants SET seen_s = ? WHERE participant_id = ?", (now, pid))
            else:
                me = slotting.SlotHolder(pid, row[0], row[1], row[2] if row[2] is not None else row[1],
                                         row[3] is not None)
                if slotting.may_continue(me, self._holders(), now, idle_s):
                    claimed = me.claimed_s if slotting.holds(me, now, idle_s) else now  # taken back: claimed now
                    self.db.execute("UPDATE participants SET seen_s = ?, slot_at_s = ? WHERE participant_id = ?",
                                    (now, claimed, pid))
                else:
                    self._continue_as_new(definition, participant, idle_s)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        found = self.participant(participant.token)
        assert found is not None  # the token always names one participant
        return found

    def _continue_as_new(self, definition: TestDefinition, old: Participant, idle_s: float) -> int:
        """Move ``old``'s token to a new participant in a fresh slot (inside a transaction); returns its id."""
        self.db.execute("UPDATE participants SET token = ? WHERE participant_id = ?",
                        (f"released-{secrets.token_hex(16)}", old.participant_id))
        pid = self._insert_participant(old.token, secrets.token_hex(32))
        self.db.execute("UPDATE participants SET (consented, trained) = (SELECT consented, trained "
                        "FROM participants WHERE participant_id = ?) WHERE participant_id = ?",
                        (old.participant_id, pid))
        self.db.execute("INSERT INTO headphone_checks (participant_id, passed, correct, n_trials, details, at) "
                        "SELECT ?, passed, correct, n_trials, details, at FROM headphone_checks "
                        "WHERE participant_id = ?", (pid, old.participant_id))
        self._claim(definition, pid, idle_s)
        self.db.execute("UPDATE participants SET continued_as = (SELECT label FROM participants WHERE "
                        "participant_id = ?) WHERE participant_id = ?", (pid, old.participant_id))
        return pid

    def participant(self, token: str) -> Participant | None:
        """The participant holding ``token``, or None (unknown or forged token)."""
        if not isinstance(token, str) or not token:
            return None
        query = ("SELECT participant_id, token, label, slot, orders, consented, trained, finished, secret, "
                 "slot_at_s FROM participants WHERE token = ?")
        row = self.db.execute(query, (token,)).fetchone()
        if row is None or not secrets.compare_digest(row[1], token):
            return None
        if row[8] is None:  # created before secrets existed: draw one now (the first writer wins)
            self.db.execute("UPDATE participants SET secret = ? WHERE participant_id = ? AND secret IS NULL",
                            (secrets.token_hex(32), row[0]))
            row = self.db.execute(query, (token,)).fetchone()
        return Participant(row[0], row[1], row[2], row[3] if row[9] is not None else None,
                           tuple(tuple(o) for o in json.loads(row[4])),
                           row[5] is not None, row[6] is not None, row[7] is not None, row[8])

    def mark(self, participant: Participant, stage: str) -> None:
        """Record ``consented`` or ``trained`` (first time only)."""
        if stage not in ("consented", "trained"):
            raise ValueError(f"stage: expected 'consented' or 'trained', got {stage!r}")
        self.db.execute(f"UPDATE participants SET {stage} = COALESCE({stage}, CURRENT_TIMESTAMP) "
                        "WHERE participant_id = ?", (participant.participant_id,))

    def done_trials(self, participant: Participant) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT trial_index FROM trials WHERE participant_id = ?",
                                              (participant.participant_id,))}

    # --- delivery and submissions -----------------------------------------------------------------------------

    def mark_delivered(self, participant: Participant, trial_index: int) -> None:
        """Record (first time only) that the server delivered trial ``trial_index`` to ``participant`` now."""
        self.db.execute("INSERT OR IGNORE INTO trial_times (participant_id, trial_index, delivered_s) "
                        "VALUES (?, ?, ?)", (participant.participant_id, trial_index, self.clock()))

    def open_seconds(self, participant: Participant, trial_index: int) -> float:
        """Server seconds since the trial was first delivered (NaN: never delivered)."""
        row = self.db.execute("SELECT delivered_s FROM trial_times WHERE participant_id = ? AND trial_index = ?",
                              (participant.participant_id, trial_index)).fetchone()
        return self.clock() - row[0] if row is not None and row[0] is not None else math.nan

    def submit(self, definition: TestDefinition, participant: Participant, trial_index: int, *,
               scores: Mapping[str, float] | None = None, answer: str | None = None,
               events: Sequence[PlayEvent] = ()) -> bool:
        """Store one trial atomically: its ratings (MUSHRA, ACR, DCR, BS.1116) or answer (AB/ABX), its play
        events, the time since the server first delivered it and the seconds credited per stimulus
        (:func:`evalkit.listening.analysis.behaviour.credited_seconds`).

        Returns:
            True if stored, False if this trial was already stored (nothing is written again).

        Raises:
            ListenError: a trial index, stimulus id, score or answer that does not belong to this trial.
        """
        if participant.slot is None:
            raise ListenError(f"{participant.label}: no listener slot yet (its first trial has not started)")
        trials = definition.trials_for(participant.slot)
        if not 0 <= trial_index < len(trials):
            raise ListenError(f"trial {trial_index}: out of range (0..{len(trials) - 1})")
        trial = trials[trial_index]
        rows = _rating_rows(definition, trial, scores) if definition.design in RATED_DESIGNS else None
        choice = None if rows is not None else _choice_row(definition, trial, answer)
        known = set(trial.stimuli) | ({trial.reference} if trial.reference else set())
        bad = [e.stimulus_id for e in events if e.stimulus_id not in known]
        if bad:
            raise ListenError(f"trial {trial_index}: play event for a stimulus not in this trial ({bad[0]})")
        claimed: dict[str, float] = dict.fromkeys(sorted(known), 0.0)
        for e in events:
            claimed[e.stimulus_id] += e.duration_s
        pid = participant.participant_id
        self.db.execute("BEGIN IMMEDIATE")
        try:
            try:
                self.db.execute("INSERT INTO trials (participant_id, trial_index, item, design) VALUES (?, ?, ?, ?)",
                                (pid, trial_index, trial.item, str(definition.design)))
            except sqlite3.IntegrityError:
                self.db.execute("ROLLBACK")
                return False
            if rows is not None:
                self.db.executemany("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?)",
                                    [(pid, trial_index, *r) for r in rows])
            else:
                self.db.execute("INSERT INTO choices VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (pid, trial_index, *choice))
            self.db.executemany("INSERT INTO play_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                                [(pid, trial_index, k, e.stimulus_id, e.start_s, e.duration_s, e.at_ms)
                                 for k, e in enumerate(events)])
            self._store_listening(definition, pid, trial_index, claimed)
            self.db.execute("DELETE FROM drafts WHERE participant_id = ? AND trial_index = ?", (pid, trial_index))
            done = self.db.execute("SELECT COUNT(*) FROM trials WHERE participant_id = ?", (pid,)).fetchone()[0]
            if done == len(trials):
                self.db.execute("UPDATE participants SET finished = CURRENT_TIMESTAMP WHERE participant_id = ?",
                                (pid,))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return True

    def _store_listening(self, definition: TestDefinition, pid: int, trial_index: int,
                         claimed: dict[str, float]) -> None:
        now = self.clock()
        self.db.execute("INSERT OR IGNORE INTO trial_times (participant_id, trial_index) VALUES (?, ?)",
                        (pid, trial_index))
        delivered = self.db.execute("SELECT delivered_s FROM trial_times WHERE participant_id = ? AND "
                                    "trial_index = ?", (pid, trial_index)).fetchone()[0]
        credited = credited_seconds(claimed, now - delivered if delivered is not None else math.nan)
        self.db.execute("UPDATE trial_times SET submitted_s = ?, claimed_s = ? WHERE participant_id = ? AND "
                        "trial_index = ?", (now, sum(claimed.values()), pid, trial_index))
        self.db.executemany("INSERT INTO listened VALUES (?, ?, ?, ?, ?)", [
            (pid, trial_index, sid, seconds, definition.stimuli[sid].samples / definition.stimuli[sid].sample_rate)
            for sid, seconds in credited.items()])

    # --- drafts and the headphone check -------------------------------------------------------------------

    def save_draft(self, participant: Participant, trial_index: int, data: dict) -> None:
        """Keep the state of a trial in progress (replaces the previous draft of that trial)."""
        self.db.execute("INSERT INTO drafts (participant_id, trial_index, data) VALUES (?, ?, ?) "
                        "ON CONFLICT (participant_id, trial_index) DO UPDATE SET data = excluded.data, "
                        "updated = CURRENT_TIMESTAMP", (participant.participant_id, trial_index, json.dumps(data)))

    def draft(self, participant: Participant, trial_index: int) -> dict | None:
        row = self.db.execute("SELECT data FROM drafts WHERE participant_id = ? AND trial_index = ?",
                              (participant.participant_id, trial_index)).fetchone()
        return json.loads(row[0]) if row else None

    def save_headphone_check(self, participant: Participant, passed: bool, correct: int, n_trials: int,
                             details: dict) -> bool:
        """Store the participant's screening result; False (nothing written) if one is stored already."""
        cur = self.db.execute("INSERT OR IGNORE INTO headphone_checks (participant_id, passed, correct, n_trials, "
                              "details) VALUES (?, ?, ?, ?, ?)", (participant.participant_id, int(passed), correct,
                                                                  n_trials, json.dumps(details)))
        return cur.rowcount == 1

    def headphone_result(self, participant: Participant) -> bool | None:
        """Whether the participant passed the headphone check (None: not taken yet)."""
        row = self.db.execute("SELECT passed FROM headphone_checks WHERE participant_id = ?",
                              (participant.participant_id,)).fetchone()
        return None if row is None else bool(row[0])

    def headphone_results(self) -> dict[str, bool]:
        """Assessor label (as in ratings and choices) → passed the headphone check, for those who took it."""
        return {label: bool(passed) for label, passed in self.db.execute(
            "SELECT p.label, h.passed FROM headphone_checks h JOIN participants p USING (participant_id) "
            "ORDER BY p.label")}

    def headphone_checks(self) -> list[dict]:
        """Per participant who took the headphone check: ``{assessor, passed, correct, n_trials}``."""
        return [{"assessor": r[0], "passed": bool(r[1]), "correct": r[2], "n_trials": r[3]} for r in self.db.execute(
            "SELECT p.label, h.passed, h.correct, h.n_trials FROM headphone_checks h "
            "JOIN participants p USING (participant_id) ORDER BY p.label")]

    # --- the finish page's questionnaire ----------------------------------------------------------------------

    def save_questionnaire(self, participant: Participant, answers: Mapping[str, str | float | None]) -> bool:
        """Store the participant's checked answers (by question id) as one row; False (nothing written) if stored
        already: the first answers stand."""
        cur = self.db.execute("INSERT OR IGNORE INTO questionnaire (participant_id, answers) VALUES (?, ?)",
                              (participant.participant_id, json.dumps(dict(answers))))
        return cur.rowcount == 1

    def questionnaire_done(self, participant: Participant) -> bool:
        return self.db.execute("SELECT 1 FROM questionnaire WHERE participant_id = ?",
                               (participant.participant_id,)).fetchone() is not None

    def questionnaire_answers(self) -> dict[str, dict]:
        """Assessor label → answers by question id, for those who answered."""
        return {label: json.loads(answers) for label, answers in self.db.execute(
            "SELECT p.label, q.answers FROM questionnaire q JOIN participants p USING (participant_id) "
            "ORDER BY p.label")}

    # --- reads for analysis and the admin page ----------------------------------------------------------------

    def ratings(self, skip: Collection[tuple[str, int]] = ()) -> list[Rating]:
        """Every rating of the counted participants (not of one released and continued as another), except
        those of the trials in ``skip`` (assessor label, trial index)."""
        skip = set(skip)
        return [Rating(*r) for label, index, *r in self.db.execute(
            "SELECT p.label, r.trial_index, p.label, r.item, r.condition, r.score FROM ratings r "
            "JOIN participants p USING (participant_id) WHERE p.continued_as IS NULL "
            "ORDER BY p.label, r.item, r.condition") if (label, index) not in skip]

    def trial_ratings(self, skip: Collection[tuple[str, int]] = ()) -> list[tuple[str, int, Rating]]:
        """(assessor, trial index, rating) of every rating of the counted participants, except those of the
        trials in ``skip``: BS.1116 pairs the two grades of a trial."""
        skip = set(skip)
        return [(r[0], r[1], Rating(r[0], *r[2:])) for r in self.db.execute(
            "SELECT p.label, r.trial_index, r.item, r.condition, r.score FROM ratings r "
            "JOIN participants p USING (participant_id) WHERE p.continued_as IS NULL "
            "ORDER BY p.label, r.trial_index, r.condition") if (r[0], r[1]) not in skip]

    def choices(self, skip: Collection[tuple[str, int]] = ()) -> list[Choice]:
        """Every AB/ABX answer of the counted participants, except those of the trials in ``skip``."""
        skip = set(skip)
        return [Choice(*r) for label, index, *r in self.db.execute(
            "SELECT p.label, c.trial_index, p.label, c.item, c.condition_a, c.condition_b, c.chosen, c.x "
            "FROM choices c JOIN participants p USING (participant_id) WHERE p.continued_as IS NULL "
            "ORDER BY p.label, c.trial_index") if (label, index) not in skip]

    def listening(self, definition: TestDefinition) -> list[TrialListening]:
        """The listening record of every stored trial of the counted participants, by assessor and trial."""
        heard: dict[tuple[int, int], list[StimulusListening]] = {}
        for pid, index, sid, seconds, length in self.db.execute(
                "SELECT participant_id, trial_index, stimulus_id, listened_s, length_s FROM listened "
                "ORDER BY participant_id, trial_index, stimulus_id"):
            stimulus = definition.stimuli.get(sid)
            heard.setdefault((pid, index), []).append(
                StimulusListening(sid, stimulus.condition if stimulus else "unknown stimulus", seconds, length))
        out = []
        for pid, label, index, item, delivered, submitted, claimed in self.db.execute(
                "SELECT p.participant_id, p.label, t.trial_index, t.item, s.delivered_s, s.submitted_s, s.claimed_s "
                "FROM trials t JOIN participants p USING (participant_id) LEFT JOIN trial_times s "
                "USING (participant_id, trial_index) WHERE p.continued_as IS NULL ORDER BY p.label, t.trial_index"):
            known = delivered is not None and submitted is not None
            out.append(TrialListening(label, index, item, submitted - delivered if known else math.nan,
                                      claimed if claimed is not None else math.nan,
                                      tuple(heard.get((pid, index), ())) if known else ()))
        return out

    def export_rows(self, definition: TestDefinition) -> list[dict]:
        """The ratings export: per rating (MUSHRA) or answer (AB/ABX) of the counted participants, the record's
        fields and its trial's listening columns (server seconds on the trial; seconds and fraction of its
        length each stimulus was heard; NaN where the trial has no listening record)."""
        listening = {(t.assessor, t.trial_index): t for t in self.listening(definition)}
        if definition.design in RATED_DESIGNS:
            rows = self.db.execute(
                "SELECT p.label, r.item, r.condition, r.score, r.trial_index, r.stimulus_id FROM ratings r "
                "JOIN participants p USING (participant_id) WHERE p.continued_as IS NULL "
                "ORDER BY p.label, r.item, r.condition").fetchall()
            out = []
            for label, item, condition, score, index, sid in rows:
                t = listening.get((label, index))
                heard = {s.stimulus_id: s for s in t.stimuli} if t else {}
                s = heard.get(sid)
                out.append({"assessor": label, "item": item, "condition": condition, "score": score,
                            "trial": index + 1, "time_on_trial_s": t.time_on_trial_s if t else math.nan,
                            "listened_s": s.listened_s if s else math.nan,
                            "listened_fraction": s.fraction if s else math.nan})
            return out
        out = []
        sides = ("a", "b", "x")[: 3 if definition.design is Design.ABX else 2]
        for *fields, index, slot in self.db.execute(
                "SELECT p.label, c.item, c.condition_a, c.condition_b, c.chosen, c.x, c.trial_index, p.slot "
                "FROM choices c JOIN participants p USING (participant_id) WHERE p.continued_as IS NULL "
                "ORDER BY p.label, c.trial_index").fetchall():
            t = listening.get((fields[0], index))
            heard = {s.stimulus_id: s for s in t.stimuli} if t else {}
            shown = definition.trials_for(slot)[index].stimuli
            row = {**Choice(*fields).__dict__, "trial": index + 1,
                   "time_on_trial_s": t.time_on_trial_s if t else math.nan}
            for side, sid in zip(sides, shown, strict=True):
                row[f"listened_{side}_s"] = heard[sid].listened_s if sid in heard else math.nan
            row["min_listened_fraction"] = min((s.fraction for s in heard.values()), default=math.nan)
            out.append(row)
        return out

    def progress(self, definition: TestDefinition) -> list[dict]:
        """Per participant: label, slot (None before its first trial), trials done of total, consent/training/
        finish times, and the label it continued as after its slot was released and taken (no tokens)."""
        rows = self.db.execute(
            "SELECT p.label, p.slot, COUNT(t.trial_index), p.created, p.consented, p.trained, p.finished, h.passed, "
            "p.slot_at_s, p.continued_as "
            "FROM participants p LEFT JOIN trials t USING (participant_id) "
            "LEFT JOIN headphone_checks h USING (participant_id) GROUP BY p.participant_id "
            "ORDER BY p.participant_id").fetchall()
        out = [{"assessor": r[0], "slot": r[1] if r[8] is not None else None, "done": r[2],
                "trials": len(definition.trials_for(r[1])), "created": r[3], "consented": r[4], "trained": r[5],
                "finished": r[6], "continued_as": r[9]} for r in rows]
        if definition.headphone is not None:
            for row, r in zip(out, rows, strict=True):
                row["headphones"] = None if r[7] is None else ("passed" if r[7] else "failed")
        return out


def _rating_rows(definition: TestDefinition, trial: Trial, scores: Mapping[str, float] | None) -> list[tuple]:
    if scores is None or set(scores) != set(trial.stimuli):
        missing = sorted(set(trial.stimuli) - set(scores or {}))
        extra = sorted(set(scores or {}) - set(trial.stimuli))
        raise ListenError(f"item {trial.item}: ratings must cover exactly this trial's stimuli "
                          f"(missing {len(missing)}, unknown {len(extra)})")
    rows = []
    for sid in trial.stimuli:
        score = scores[sid]
        if definition.design is not Design.MUSHRA:
            if not on_scale(definition.design, score):
                low, high, step = SCALES[definition.design]
                raise ListenError(f"item {trial.item}: score {score!r} is not a grade of the {definition.design} "
                                  f"scale ({low:g} to {high:g} in steps of {step:g})")
            score = round(float(score), 1)
        elif not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score) \
                or not 0 <= score <= 100:
            raise ListenError(f"item {trial.item}: score {score!r} is not a number in 0..100")
        stim = definition.stimuli[sid]
        if stim.condition == OPEN_REFERENCE:
            raise ListenError(f"item {trial.item}: the open reference is not rated")
        rows.append((sid, stim.item, stim.condition, float(score)))
    return rows


def _choice_row(definition: TestDefinition, trial: Trial, answer: str | None) -> tuple:
    allowed = ANSWERS if definition.design is Design.AB else ANSWERS[:2]
    if answer not in allowed:
        raise ListenError(f"item {trial.item}: answer {answer!r} is not one of {', '.join(allowed)}")
    a, b = definition.pair_of(trial)
    shown = {"A": definition.stimuli[trial.stimuli[0]].condition, "B": definition.stimuli[trial.stimuli[1]].condition}
    x = definition.stimuli[trial.stimuli[2]].condition if definition.design is Design.ABX else None
    return trial.item, a, b, answer, shown.get(answer), x
