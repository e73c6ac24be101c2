"""Listening-test store: SQLite in WAL mode, one transaction per submitted trial (ratings + play events).

Every participant has an unguessable token (``secrets.token_urlsafe``) that resumes the session after a refresh,
a crash or a server restart; all reads by the app are keyed by that token's participant, so a participant sees
only its own session. A trial is stored once: a second submit of the same trial (double click, two tabs) is
refused by the primary key, never duplicated. Condition names are resolved here, on the server. A trial in progress
is kept as a draft (ratings, answer and play events so far), so a refresh restores it; the draft is deleted when
the trial is stored. The headphone check's result is one row per participant (the first result stands). Each
participant also has a random ``secret`` that never leaves the server: the ids, bundle names and headphone sequence
its browser gets are derived from it (:mod:`evalkit.listening.session`).
"""

from __future__ import annotations

import json
import math
import random
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
    consented TEXT, trained TEXT, finished TEXT, secret TEXT
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
CREATE TABLE IF NOT EXISTS play_events (
    participant_id INTEGER NOT NULL, trial_index INTEGER NOT NULL, seq INTEGER NOT NULL, stimulus_id TEXT NOT NULL,
    start_s REAL, duration_s REAL, at_ms REAL, PRIMARY KEY (participant_id, trial_index, seq)
);
"""

ANSWERS = ("A", "B", "none")  # AB: preferred side or no preference; ABX: the side judged equal to X


@dataclass(frozen=True)
class Participant:
    participant_id: int
    token: str
    label: str  # what analyses and the admin page call the assessor (the token stays secret)
    slot: int
    orders: tuple[tuple[int, ...], ...]  # per trial: display order of its stimuli (MUSHRA), fresh per participant
    consented: bool
    trained: bool
    finished: bool
    secret: str  # 256 random bits (hex), server-side only: the key of everything per participant on the wire


class ListeningStore:
    """One connection to a test's SQLite file (open one per thread or process)."""

    def __init__(self, path: str | Path, timeout_s: float = 30.0):
        self.path = Path(path)
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

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ListeningStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- participants -----------------------------------------------------------------------------------------

    def create_participant(self, definition: TestDefinition) -> Participant:
        """A new participant in the least-used listener slot, with a fresh random stimulus order per trial."""
        token = secrets.token_urlsafe(16)
        shuffler = random.Random(secrets.randbits(64))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            used = dict(self.db.execute("SELECT slot, COUNT(*) FROM participants GROUP BY slot").fetchall())
            slot = min(range(len(definition.slots)), key=lambda s: (used.get(s, 0), s))
            orders = []
            for trial in definition.trials_for(slot):
                order = list(range(len(trial.stimuli)))
                if definition.design is Design.MUSHRA:
                    shuffler.shuffle(order)
                orders.append(order)
            cur = self.db.execute("INSERT INTO participants (token, slot, orders, secret) VALUES (?, ?, ?, ?)",
                                  (token, slot, json.dumps(orders), secrets.token_hex(32)))
            pid = int(cur.lastrowid)
            self.db.execute("UPDATE participants SET label = ? WHERE participant_id = ?", (f"L{pid:03d}", pid))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        found = self.participant(token)
        assert found is not None  # just inserted
        return found

    def participant(self, token: str) -> Participant | None:
        """The participant holding ``token``, or None (unknown or forged token)."""
        if not isinstance(token, str) or not token:
            return None
        query = ("SELECT participant_id, token, label, slot, orders, consented, trained, finished, secret "
                 "FROM participants WHERE token = ?")
        row = self.db.execute(query, (token,)).fetchone()
        if row is None or not secrets.compare_digest(row[1], token):
            return None
        if row[8] is None:  # created before secrets existed: draw one now (the first writer wins)
            self.db.execute("UPDATE participants SET secret = ? WHERE participant_id = ? AND secret IS NULL",
                            (secrets.token_hex(32), row[0]))
            row = self.db.execute(query, (token,)).fetchone()
        return Participant(row[0], row[1], row[2], row[3], tuple(tuple(o) for o in json.loads(row[4])),
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

    # --- submissions ------------------------------------------------------------------------------------------

    def submit(self, definition: TestDefinition, participant: Participant, trial_index: int, *,
               scores: Mapping[str, float] | None = None, answer: str | None = None,
               events: Sequence[PlayEvent] = ()) -> bool:
        """Store one trial atomically: its ratings (MUSHRA, ACR, DCR, BS.1116) or answer (AB/ABX) and its play
        events.

        Returns:
            True if stored, False if this trial was already stored (nothing is written again).

        Raises:
            ListenError: a trial index, stimulus id, score or answer that does not belong to this trial.
        """
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

    # --- reads for analysis and the admin page ----------------------------------------------------------------

    def ratings(self) -> list[Rating]:
        return [Rating(*r) for r in self.db.execute(
            "SELECT p.label, r.item, r.condition, r.score FROM ratings r JOIN participants p USING (participant_id) "
            "ORDER BY p.label, r.item, r.condition")]

    def trial_ratings(self) -> list[tuple[str, int, Rating]]:
        """(assessor, trial index, rating) of every stored rating: BS.1116 pairs the two grades of a trial."""
        return [(r[0], r[1], Rating(r[0], *r[2:])) for r in self.db.execute(
            "SELECT p.label, r.trial_index, r.item, r.condition, r.score FROM ratings r "
            "JOIN participants p USING (participant_id) ORDER BY p.label, r.trial_index, r.condition")]

    def choices(self) -> list[Choice]:
        return [Choice(*r) for r in self.db.execute(
            "SELECT p.label, c.item, c.condition_a, c.condition_b, c.chosen, c.x FROM choices c "
            "JOIN participants p USING (participant_id) ORDER BY p.label, c.trial_index")]

    def progress(self, definition: TestDefinition) -> list[dict]:
        """Per participant: label, slot, trials done of total, consent/training/finish times (no tokens)."""
        rows = self.db.execute(
            "SELECT p.label, p.slot, COUNT(t.trial_index), p.created, p.consented, p.trained, p.finished, h.passed "
            "FROM participants p LEFT JOIN trials t USING (participant_id) "
            "LEFT JOIN headphone_checks h USING (participant_id) GROUP BY p.participant_id "
            "ORDER BY p.participant_id").fetchall()
        out = [{"assessor": r[0], "slot": r[1], "done": r[2], "trials": len(definition.trials_for(r[1])),
                "created": r[3], "consented": r[4], "trained": r[5], "finished": r[6]} for r in rows]
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
