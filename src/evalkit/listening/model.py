"""Records of a listening test: one small frozen type per concept, plus the test definition file.

The definition (``test.json`` in a test folder) is read by the server only: it maps opaque stimulus ids to files,
items and conditions. The browser sees one bundle per trial, ids drawn per participant and neutral labels
("Reference", "1", "A"), never a stimulus id of this file, a condition name or a path.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from evalkit.listening.errors import ListenError
from evalkit.listening.prepare.headphone import N_TRIALS, HeadphoneCheck
from evalkit.listening.questionnaire import Question, parse_questions

DEFINITION_FILE = "test.json"
STIMULI_DIR = "stimuli"  # the stimulus files, <id>.flac (old: .wav), never served (folders before: static/)
STATIC_DIR = "static"  # Streamlit serves <app folder>/static/* at /app/static/*: only the per-participant bundles
STORE_FILE = "listening.sqlite"
APP_FILE = "listening_app.py"

REFERENCE = "reference"  # the hidden reference (the open reference is not rated)
ANCHOR_LOW = "anchor35"  # BS.1534-3 low anchor: 3.5 kHz low-pass
ANCHOR_MID = "anchor70"  # mid anchor: 7 kHz low-pass
ANCHOR_SPECS = {ANCHOR_LOW: "lowpass?cutoff_hz=3500", ANCHOR_MID: "lowpass?cutoff_hz=7000"}
MAX_SIGNALS_PER_TRIAL = 12  # BS.1534-3: at most 12 signals (conditions, hidden reference and anchors) at once


class Design(enum.StrEnum):
    MUSHRA = "mushra"
    AB = "ab"
    ABX = "abx"
    ACR = "acr"  # ITU-T P.800 / P.808 absolute category rating: one signal per trial, 5-point scale
    DCR = "dcr"  # ITU-T P.800 / P.808 degradation category rating: the reference, then the signal
    BS1116 = "bs1116"  # ITU-R BS.1116-3: open reference, A and B (one is the hidden reference), 1.0-5.0 each


# Designs whose answers are scores per signal (stored as ratings), and their scales: (lowest, highest, step) and the
# labelled grades, best first. ACR/DCR are integer categories; BS.1116 is continuous with one decimal.
RATED_DESIGNS = (Design.MUSHRA, Design.ACR, Design.DCR, Design.BS1116)
CATEGORY_DESIGNS = (Design.ACR, Design.DCR, Design.BS1116)  # the P.800 / BS.1116 five-grade designs
SCALES: dict[Design, tuple[float, float, float]] = {
    Design.MUSHRA: (0.0, 100.0, 1.0), Design.ACR: (1.0, 5.0, 1.0), Design.DCR: (1.0, 5.0, 1.0),
    Design.BS1116: (1.0, 5.0, 0.1)}
GRADES: dict[Design, tuple[tuple[int, str], ...]] = {
    Design.ACR: ((5, "Excellent"), (4, "Good"), (3, "Fair"), (2, "Poor"), (1, "Bad")),  # P.800 Annex B
    Design.DCR: ((5, "Degradation is inaudible"), (4, "Degradation is audible but not annoying"),  # P.800 Annex D
                 (3, "Degradation is slightly annoying"), (2, "Degradation is annoying"),
                 (1, "Degradation is very annoying")),
    Design.BS1116: ((5, "Imperceptible"), (4, "Perceptible, but not annoying"), (3, "Slightly annoying"),
                    (2, "Annoying"), (1, "Very annoying")),  # BS.1116-3 impairment scale
}


def on_scale(design: Design, score) -> bool:
    """Whether ``score`` is a grade of ``design``'s scale (a finite number in range, on its step).

    >>> on_scale(Design.ACR, 3), on_scale(Design.ACR, 3.5), on_scale(Design.BS1116, 3.5), on_scale(Design.BS1116, 3.55)
    (True, False, True, False)
    """
    if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
        return False
    low, high, step = SCALES[design]
    steps = (score - low) / step
    return low <= score <= high and abs(steps - round(steps)) < 1e-6


@dataclass(frozen=True)
class Stimulus:
    """One audio file of the test; ``stimulus_id`` is random and is the only thing the browser sees."""

    stimulus_id: str
    item: str
    condition: str  # REFERENCE, ANCHOR_LOW, ANCHOR_MID or a codec spec from the run; "open-reference" for MUSHRA's
    sample_rate: int
    channels: int
    samples: int


OPEN_REFERENCE = "open-reference"


@dataclass(frozen=True)
class Trial:
    """One screen. MUSHRA: ``reference`` is the open reference and ``stimuli`` the rated signals (shown in a fresh
    random order per participant). AB: ``stimuli`` = (A, B). ABX: (A, B, X). ACR: (the signal,), no reference.
    DCR: the open reference and (the signal,). BS.1116: the open reference and (A, B), one of them the hidden
    reference."""

    item: str
    stimuli: tuple[str, ...]
    reference: str | None = None


@dataclass(frozen=True, kw_only=True)
class TestDefinition:
    """Everything ``listen serve`` needs; ``slots[k]`` is the trial list of the k-th listener (cycled beyond).
    Built from named fields only."""

    design: Design
    seed: int
    run_dir: str
    items: tuple[str, ...]
    conditions: dict[str, str]  # condition name -> its codec spec (anchors included); hidden reference absent
    stimuli: dict[str, Stimulus]
    slots: tuple[tuple[Trial, ...], ...]
    training: Trial | None = None
    target_lufs: float = -23.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    pairs: tuple[tuple[str, str], ...] = ()  # AB/ABX: the compared conditions, in analysis order (a, b)
    labels: dict[str, str] = field(default_factory=dict)  # condition name as stored in ratings -> display label
    stimulus_format: str = "wav"  # file suffix of the stimuli: "flac" since evalkit wrote FLAC, "wav" before
    repeats: int = 1  # AB/ABX: presentations of each (item, pair) per listener
    require_training: bool = False  # no "skip training" button
    instructions: str = ""  # Markdown shown on the welcome page (empty: the design's default text)
    consent: str = ""  # Markdown consent text (empty: the default sentence)
    headphone: HeadphoneCheck | None = None  # screening before training (drawn per participant, on the server)
    stimuli_dir: str = STATIC_DIR  # folder of the stimulus files: STIMULI_DIR since bundles, static/ before
    trial_instructions: dict[str, str] = field(default_factory=dict)  # item (or "*": every trial) -> Markdown
    questionnaire: tuple[Question, ...] = ()  # the researcher's questions, after the standard ones

    def file_name(self, stimulus_id: str) -> str:
        """The stimulus file's name under :attr:`stimuli_dir`."""
        return f"{stimulus_id}.{self.stimulus_format}"

    def stimulus_path(self, folder: str | Path, stimulus_id: str) -> Path:
        """Where the stimulus file lies in the test folder ``folder``."""
        return Path(folder) / self.stimuli_dir / self.file_name(stimulus_id)

    def instructions_for(self, trial: Trial) -> str:
        """The Markdown shown above ``trial``: its item's entry in ``trial_instructions``, else ``"*"``'s, else
        nothing."""
        return self.trial_instructions.get(trial.item, self.trial_instructions.get("*", ""))

    def pair_of(self, trial: Trial) -> tuple[str, str]:
        """The (a, b) condition pair an AB/ABX trial compares, whatever side each was presented on."""
        shown = {self.stimuli[s].condition for s in trial.stimuli[:2]}
        for pair in self.pairs:
            if set(pair) == shown:
                return pair
        raise ListenError(f"item {trial.item}: trial compares {sorted(shown)}, not a pair of the test")

    def trials_for(self, slot: int) -> tuple[Trial, ...]:
        return self.slots[slot % len(self.slots)]

    def save(self, folder: Path) -> Path:
        path = Path(folder) / DEFINITION_FILE
        data = asdict(self)
        data["design"] = str(self.design)
        data["stimulus_format"] = self.stimulus_format
        path.write_text(json.dumps(data, indent=1))
        return path


def _trial(raw: dict) -> Trial:
    return Trial(str(raw["item"]), tuple(str(s) for s in raw["stimuli"]), raw.get("reference"))


def _headphone(raw: dict | None) -> HeadphoneCheck | None:
    """The screening's settings; a definition written before per-participant sequences lists its shared trials
    (their files and answers are no longer used)."""
    if not raw:
        return None
    n_trials = int(raw.get("n_trials", len(raw.get("trials", ())) or N_TRIALS))
    return HeadphoneCheck(str(raw["method"]), int(raw["pass_correct"]), n_trials)


def default_labels(conditions: dict[str, str]) -> dict[str, str]:
    """Labels of a definition written before ``labels`` existed: the short labels of its condition names."""
    from evalkit.runner.reader import labels_for

    return labels_for(dict.fromkeys([REFERENCE, ANCHOR_LOW, ANCHOR_MID, *conditions]))


def load_definition(folder: str | Path, *, check_files: bool = True) -> TestDefinition:
    """Read and validate ``folder/test.json``; every stimulus a trial names must exist (and its file, if asked).

    Raises:
        ListenError: one line naming the file and the first problem found.
    """
    folder = Path(folder)
    path = folder / DEFINITION_FILE
    if not path.is_file():
        raise ListenError(f"{path}: no test definition (create one with `evalkit listen prepare`)")
    try:
        raw = json.loads(path.read_text())
        stimuli = {k: Stimulus(**v) for k, v in raw["stimuli"].items()}
        definition = TestDefinition(
            design=Design(raw["design"]), seed=int(raw["seed"]), run_dir=str(raw["run_dir"]),
            items=tuple(raw["items"]), conditions=dict(raw["conditions"]), stimuli=stimuli,
            slots=tuple(tuple(_trial(t) for t in slot) for slot in raw["slots"]),
            training=_trial(raw["training"]) if raw.get("training") else None,
            target_lufs=float(raw.get("target_lufs", -23.0)), notes=tuple(raw.get("notes", ())),
            pairs=tuple((str(a), str(b)) for a, b in raw.get("pairs", ())),
            labels={str(k): str(v) for k, v in raw.get("labels", {}).items()},
            stimulus_format=str(raw.get("stimulus_format", "wav")), repeats=int(raw.get("repeats", 1)),
            require_training=bool(raw.get("require_training", False)),
            instructions=str(raw.get("instructions", "")), consent=str(raw.get("consent", "")),
            headphone=_headphone(raw.get("headphone")), stimuli_dir=str(raw.get("stimuli_dir", STATIC_DIR)),
            trial_instructions={str(k): str(v) for k, v in raw.get("trial_instructions", {}).items()})
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ListenError(f"{path}: malformed test definition ({type(exc).__name__}: {exc})") from None
    definition = replace(definition, questionnaire=parse_questions(raw.get("questionnaire", []), str(path)))
    problems = validate_definition(definition, folder if check_files else None)
    if problems:
        raise ListenError(f"{path}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    if not definition.labels:
        definition = replace(definition, labels=default_labels(definition.conditions))
    return definition


def validate_definition(definition: TestDefinition, folder: Path | None = None) -> list[str]:
    """Every problem of a definition, one line each: unknown or missing stimuli, mismatched rate/length/channels
    within a trial, too many signals, an empty design."""
    problems = []
    if not definition.slots or not all(definition.slots):
        problems.append("slots: no trials")
    expected = {Design.MUSHRA: None, Design.AB: 2, Design.ABX: 3, Design.ACR: 1, Design.DCR: 1,
                Design.BS1116: 2}[definition.design]
    needs_reference = definition.design in (Design.MUSHRA, Design.DCR, Design.BS1116)
    trials = [t for slot in definition.slots for t in slot] + ([definition.training] if definition.training else [])
    for trial in trials:
        ids = list(trial.stimuli) + ([trial.reference] if trial.reference else [])
        unknown = [s for s in ids if s not in definition.stimuli]
        if unknown:
            problems.append(f"item {trial.item}: unknown stimulus id {unknown[0]}")
            continue
        if needs_reference != bool(trial.reference):
            problems.append(f"item {trial.item}: a {definition.design} trial " + ("needs" if needs_reference else
                                                                                  "has no") + " open reference")
        if expected is not None and len(trial.stimuli) != expected:
            problems.append(f"item {trial.item}: {definition.design} trial needs {expected} stimuli, "
                            f"got {len(trial.stimuli)}")
        if len(trial.stimuli) > MAX_SIGNALS_PER_TRIAL:
            problems.append(f"item {trial.item}: {len(trial.stimuli)} signals, at most {MAX_SIGNALS_PER_TRIAL}")
        shapes = {(definition.stimuli[s].sample_rate, definition.stimuli[s].channels, definition.stimuli[s].samples)
                  for s in ids}
        if len(shapes) > 1:
            problems.append(f"item {trial.item}: stimuli differ in (rate, channels, samples): {sorted(shapes)}")
    if definition.stimulus_format not in ("flac", "wav"):
        problems.append(f"stimulus_format: expected 'flac' or 'wav', got {definition.stimulus_format!r}")
    if definition.stimuli_dir not in (STIMULI_DIR, STATIC_DIR):
        problems.append(f"stimuli_dir: expected {STIMULI_DIR!r} or {STATIC_DIR!r}, got {definition.stimuli_dir!r}")
    unknown_items = sorted(set(definition.trial_instructions) - {"*", *definition.items})
    if unknown_items:
        problems.append(f"trial_instructions: {unknown_items[0]!r} is neither an item of the test nor '*'")
    if definition.headphone is not None and (definition.headphone.n_trials < 3 or definition.headphone.n_trials % 3):
        problems.append(f"headphone.n_trials: expected a multiple of 3, got {definition.headphone.n_trials}")
    if folder is not None:
        for sid in definition.stimuli:
            if not definition.stimulus_path(folder, sid).is_file():
                problems.append(f"missing stimulus file {definition.stimuli_dir}/{definition.file_name(sid)}")
    return problems


@dataclass(frozen=True)
class Rating:
    """One score by one assessor for one item and condition: MUSHRA 0-100, ACR/DCR 1-5, BS.1116 1.0-5.0 (or, in
    a BS.1116 analysis, the difference grade: the signal's grade minus the hidden reference's of the same trial)."""

    assessor: str
    item: str
    condition: str
    score: float


@dataclass(frozen=True)
class Choice:
    """One AB or ABX answer. ``chosen`` is the condition picked (AB: preferred; ABX: judged equal to X), None for
    "no preference"; ``x`` is the condition X really was (ABX only)."""

    assessor: str
    item: str
    condition_a: str
    condition_b: str
    chosen: str | None
    x: str | None = None


@dataclass(frozen=True)
class Exclusion:
    """An assessor left out of an analysis, and why (unfinished, headphone check, post-screening)."""

    assessor: str
    reason: str


@dataclass(frozen=True)
class PlayEvent:
    """What the player reported: stimulus played from ``start_s`` for ``duration_s`` seconds of audio."""

    stimulus_id: str
    start_s: float
    duration_s: float
    at_ms: float  # milliseconds since the trial's page loaded
