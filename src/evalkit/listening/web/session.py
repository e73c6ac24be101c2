"""What a participant's browser receives and sends, checked on the server (no Streamlit here).

A trial reaches the browser as one bundle (:mod:`evalkit.listening.web.bundle`): every signal of the trial in the
participant's presentation order, under a URL derived from the participant's secret, so there is one request, one
size and one set of headers per trial and nothing per signal. :func:`player_data` is everything else the player
gets: per-participant ids of the signals (an HMAC of the stimulus id under the participant's secret, so two
participants never share an id and a leaked mapping serves one participant only), neutral labels, and never a
condition name, a stored stimulus id or a path. :func:`handle_submission` maps the ids back, re-checks what the player
already enforces (every stimulus played, every one rated or an answer given) and stores the trial in one transaction;
what counts as played is the player's report clamped to the server time since the trial was first delivered
(:func:`evalkit.listening.analysis.behaviour.credited_seconds`), so a trial submitted faster than its stimuli can be
played is refused. The headphone check's sounds and answers are drawn per participant from its secret too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import numpy as np

from evalkit.listening.analysis.behaviour import credited_seconds
from evalkit.listening.model import (
    GRADES,
    RATED_DESIGNS,
    SCALES,
    STATIC_DIR,
    Design,
    ListenError,
    PlayEvent,
    TestDefinition,
    Trial,
)
from evalkit.listening.prepare import headphone as hp
from evalkit.listening.questionnaire import all_questions, check_answers
from evalkit.listening.storage import ListeningStore, Participant
from evalkit.listening.web import bundle

MIN_PLAY_S = 0.25  # seconds of audio a stimulus must have been played before it counts as heard
MAX_EVENTS = 5000
MAX_DRAFT_BYTES = 200_000
STATIC_URL = "app/static"  # relative to the page, so a server.baseUrlPath keeps working
PLAYS_PER_SIGNAL = 2  # expected duration: every signal heard about twice ...
ANSWER_S = 10.0  # ... plus this per trial for rating or answering
HEADPHONE_CHECK_S = 90.0
HEADPHONE_KEY = "headphone"
HEADPHONE_BITS = 16  # noise at about -26 dBFS: 16 bits with dither are plenty, and the bundle is a third smaller


def _derived(participant: Participant, purpose: str) -> str:
    """64 hex digits that only the server can compute: HMAC-SHA256 of ``purpose`` under the participant's
    secret."""
    return hmac.new(bytes.fromhex(participant.secret), purpose.encode(), hashlib.sha256).hexdigest()


def wire_id(participant: Participant, stimulus_id: str) -> str:
    """The id under which ``participant``'s browser knows a stimulus (64 bits, hex)."""
    return _derived(participant, f"id/{stimulus_id}")[:16]


def bundle_name(participant: Participant, key: str) -> str:
    """The file name of ``participant``'s bundle for the trial ``key`` (``trial-3``, ``training``, ...)."""
    return _derived(participant, f"bundle/{key}")[:32] + bundle.SUFFIX


def bundle_path(folder: Path, participant: Participant, key: str) -> Path:
    return Path(folder) / STATIC_DIR / bundle_name(participant, key)


def bundle_url(participant: Participant, key: str) -> str:
    return f"{STATIC_URL}/{bundle_name(participant, key)}"


def presented(trial: Trial, order: Iterable[int] | None = None) -> list[str]:
    """The stimulus ids of ``trial`` in bundle order: the open reference (if any), then the rated signals in the
    display ``order`` (default: as stored)."""
    order = list(order) if order is not None else list(range(len(trial.stimuli)))
    return ([trial.reference] if trial.reference else []) + [trial.stimuli[k] for k in order]


def trial_order(definition: TestDefinition, participant: Participant, index: int) -> list[int]:
    """Display order of trial ``index`` for ``participant`` (drawn and stored at consent)."""
    trial = definition.trials_for(participant.slot)[index]
    return list(participant.orders[index]) if index < len(participant.orders) else list(range(len(trial.stimuli)))


def training_order(definition: TestDefinition, participant: Participant) -> list[int]:
    """Display order of the training signals: MUSHRA's drawn per participant (from its secret), AB/ABX as
    stored."""
    n = len(definition.training.stimuli) if definition.training else 0
    order = list(range(n))
    if definition.design is Design.MUSHRA:
        random.Random(int(_derived(participant, "training-order")[:16], 16)).shuffle(order)
    return order


def trial_bundle(folder: Path, definition: TestDefinition, stimulus_ids: Sequence[str]) -> bytes:
    """The bundle of ``stimulus_ids`` (in this order) from the test's stimulus files."""
    rate = definition.stimuli[stimulus_ids[0]].sample_rate
    return bundle.bundle_bytes([bundle.read_pcm24(definition.stimulus_path(folder, s)) for s in stimulus_ids], rate)


def deliver(folder: Path, definition: TestDefinition, participant: Participant, key: str, trial: Trial,
            order: Iterable[int]) -> Future:
    """Start (or find) the bundle of ``participant``'s trial ``key``; the future's result is its path."""
    ids = presented(trial, order)
    return bundle.ensure(bundle_path(folder, participant, key), lambda: trial_bundle(folder, definition, ids))


def release(folder: Path, participant: Participant, key: str) -> None:
    """Delete the bundle of a trial that is stored (or a check that is done)."""
    bundle.discard(bundle_path(folder, participant, key))


def expected_minutes(definition: TestDefinition, slot: int = 0) -> int:
    """Expected duration of a session in whole minutes (rounded up): every signal of every trial (and training)
    heard ``PLAYS_PER_SIGNAL`` times, ``ANSWER_S`` per trial, plus the headphone check."""
    trials = list(definition.trials_for(slot)) + ([definition.training] if definition.training else [])
    seconds = HEADPHONE_CHECK_S if definition.headphone else 0.0
    for t in trials:
        first = definition.stimuli[t.stimuli[0]]
        seconds += (len(t.stimuli) + bool(t.reference)) * PLAYS_PER_SIGNAL * first.samples / first.sample_rate
        seconds += ANSWER_S
    return max(1, math.ceil(seconds / 60))


def labels_for(design: Design, count: int) -> list[str]:
    """Neutral labels of a trial's rated stimuli: 1…n for MUSHRA, "Sample" for ACR and DCR, A/B(/X) otherwise."""
    if design is Design.MUSHRA:
        return [str(k + 1) for k in range(count)]
    return ["Sample"] if design in (Design.ACR, Design.DCR) else ["A", "B", "X"][:count]


def must_play(design: Design, trial: Trial) -> tuple[str, ...]:
    """The stimuli to be played before a trial can be stored: every rated one, and the open reference in DCR and
    BS.1116, whose grades are judged against it."""
    return trial.stimuli + ((trial.reference,) if trial.reference and design in (Design.DCR, Design.BS1116) else ())


def scale_data(design: Design) -> dict | None:
    """The rating scale the player draws: range, step and labelled grades (None for MUSHRA, AB and ABX, whose
    scales live in the player)."""
    if design not in GRADES:
        return None
    low, high, step = SCALES[design]
    return {"min": low, "max": high, "step": step, "grades": [[v, text] for v, text in GRADES[design]],
            "continuous": step < 1}


def _to_wire(draft: dict | None, ids: dict[str, str]) -> dict | None:
    """A stored draft (stimulus ids) as the player knows it (the participant's ids)."""
    if draft is None:
        return None
    return {**draft, "ratings": {ids[k]: v for k, v in draft.get("ratings", {}).items() if k in ids},
            "events": [{**e, "stimulus_id": ids[e["stimulus_id"]]} for e in draft.get("events", [])
                       if e.get("stimulus_id") in ids]}


def player_data(definition: TestDefinition, participant: Participant, trial: Trial, trial_key: str, training: bool,
                order: Iterable[int] | None = None, *, draft: dict | None = None, prefetch: str | None = None,
                require_play: bool = False) -> dict:
    """The JSON the player component receives for one trial (display order applied). ``draft``: the trial's
    stored state (restored by the player); ``prefetch``: the URL of the next trial's bundle, which the player
    fetches and decodes once this trial's audio is loaded; ``require_play``: training only, every signal must be
    played before the test starts."""
    order = list(order) if order is not None else list(range(len(trial.stimuli)))
    ids = {s: wire_id(participant, s) for s in presented(trial, order)}
    rated = [trial.stimuli[k] for k in order]
    first = definition.stimuli[rated[0]]
    return {
        "mode": str(definition.design),
        "training": training,
        "require_play": require_play,
        "trial_key": trial_key,
        "min_play_s": MIN_PLAY_S,
        "sample_rate": first.sample_rate,
        "channels": first.channels,
        "bundle": bundle_url(participant, trial_key),
        "allow_no_preference": definition.design is Design.AB,
        "scale": scale_data(definition.design),
        "play_reference": bool(trial.reference) and definition.design in (Design.DCR, Design.BS1116),
        "reference": {"id": ids[trial.reference], "label": "Reference"} if trial.reference else None,
        "stimuli": [{"id": ids[sid], "label": label}
                    for sid, label in zip(rated, labels_for(definition.design, len(rated)), strict=True)],
        "draft": _to_wire(draft, ids),
        "prefetch": prefetch,
    }


def headphone_seed(participant: Participant) -> int:
    """The seed of ``participant``'s headphone-check sequence (derived from its secret, so it is stored)."""
    return int(_derived(participant, HEADPHONE_KEY)[:16], 16)


def headphone_bundle(participant: Participant, n_trials: int) -> bytes:
    """The calibration noise and the ``n_trials`` sounds of ``participant``'s check, as one 16-bit bundle."""
    _, signals = hp.sequence(headphone_seed(participant), n_trials)
    rng = np.random.default_rng(headphone_seed(participant) + 1)  # dither
    return bundle.bundle_bytes([bundle.quantized(x, HEADPHONE_BITS, rng) for x in signals], hp.RATE,
                               HEADPHONE_BITS)


def deliver_headphone(folder: Path, definition: TestDefinition, participant: Participant) -> Future:
    check = _check(definition)
    return bundle.ensure(bundle_path(folder, participant, HEADPHONE_KEY),
                         lambda: headphone_bundle(participant, check.n_trials))


def _check(definition: TestDefinition) -> hp.HeadphoneCheck:
    if definition.headphone is None:
        raise ListenError("this test has no headphone check")
    return definition.headphone


def headphone_data(definition: TestDefinition, participant: Participant) -> dict:
    """What the headphone-check component gets: its bundle (calibration first), never the answers."""
    check = _check(definition)
    return {"bundle": bundle_url(participant, HEADPHONE_KEY), "trials": check.n_trials, "sample_rate": hp.RATE,
            "channels": 2, "burst_s": hp.BURST_S, "gap_s": hp.GAP_S}


def handle_headphone_check(store: ListeningStore, definition: TestDefinition, participant: Participant,
                           payload) -> list[str]:
    """Score and store the screening answers ``{"responses": [burst chosen in trial 1, ...]}`` against the
    participant's own sequence; returns the problems."""
    check = definition.headphone
    if check is None or not isinstance(payload, dict) or not isinstance(payload.get("responses"), list):
        return ["this page is out of date; reload it"]
    responses = payload["responses"]
    if len(responses) != check.n_trials or not all(r in (1, 2, 3) and not isinstance(r, bool) for r in responses):
        return ["answer every sound with 1, 2 or 3"]
    answers = hp.answers_for(headphone_seed(participant), check.n_trials)
    correct, passed = hp.score(answers, [int(r) for r in responses], check.pass_correct)
    store.save_headphone_check(participant, passed, correct, check.n_trials,
                               {"method": check.method, "pass_correct": check.pass_correct,
                                "responses": [int(r) for r in responses], "answers": answers})
    return []


def _from_wire(definition: TestDefinition, participant: Participant, index: int) -> dict[str, str]:
    """The participant's ids of trial ``index`` → stimulus ids."""
    trial = definition.trials_for(participant.slot)[index]
    return {wire_id(participant, s): s for s in presented(trial)}


def handle_draft(store: ListeningStore, definition: TestDefinition, participant: Participant, index: int,
                 payload) -> bool:
    """Keep the state of trial ``index`` sent by the player (ratings, answer, play events, loop and position);
    anything malformed or for another trial is ignored (False)."""
    if not isinstance(payload, dict) or payload.get("trial") != f"trial-{index}":
        return False
    if len(json.dumps(payload)) > MAX_DRAFT_BYTES:
        return False
    trial = definition.trials_for(participant.slot)[index]
    ids = _from_wire(definition, participant, index)
    try:
        events = [replace(e, stimulus_id=ids[e.stimulus_id]) for e in _events(payload.get("events", []))
                  if e.stimulus_id in ids]
    except ListenError:
        return False
    ratings = payload.get("ratings") if isinstance(payload.get("ratings"), dict) else {}
    ratings = {ids[k]: float(v) for k, v in ratings.items() if ids.get(k) in trial.stimuli
               and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 100}
    answer = payload.get("answer") if payload.get("answer") in ("A", "B", "none") else None
    view = {}
    for key in ("position_s", "loop_start_s", "loop_end_s"):
        v = payload.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0:
            view[key] = float(v)
    store.save_draft(participant, index, {
        "trial": f"trial-{index}", "ratings": ratings, "answer": answer, **view,
        "events": [{"stimulus_id": e.stimulus_id, "start_s": e.start_s, "duration_s": e.duration_s,
                    "at_ms": e.at_ms} for e in events]})
    return True


def _events(raw) -> list[PlayEvent]:
    if not isinstance(raw, list) or len(raw) > MAX_EVENTS:
        raise ListenError("events: expected a list of play events")
    out = []
    for e in raw:
        try:
            event = PlayEvent(str(e["stimulus_id"]), float(e["start_s"]), float(e["duration_s"]), float(e["at_ms"]))
        except (KeyError, TypeError, ValueError):
            raise ListenError("events: malformed play event") from None
        if not all(math.isfinite(v) and v >= 0 for v in (event.start_s, event.duration_s, event.at_ms)):
            raise ListenError("events: negative or non-finite time")
        out.append(event)
    return out


def _label_key(label: str) -> tuple[int, str]:
    """Sort key of neutral labels: MUSHRA's numbers in numeric order, letters alphabetically."""
    return (int(label), "") if label.isdigit() else (0, label)


def handle_submission(store: ListeningStore, definition: TestDefinition, participant: Participant, index: int,
                      payload) -> list[str]:
    """Check and store one trial; returns the problems (nothing stored) or ``[]`` (stored, or stored before)."""
    if not isinstance(payload, dict) or payload.get("trial") != f"trial-{index}":
        return ["this page is out of date; reload it"]
    trial = definition.trials_for(participant.slot)[index]
    ids = _from_wire(definition, participant, index)
    try:
        events = _events(payload.get("events", []))
    except ListenError as exc:
        return [str(exc)]
    raw = payload.get("ratings")
    raw = raw if isinstance(raw, dict) else {}
    if any(e.stimulus_id not in ids for e in events) or any(k not in ids for k in raw):
        return ["this page is out of date; reload it"]  # an id this participant's page never had
    events = [replace(e, stimulus_id=ids[e.stimulus_id]) for e in events]
    played: dict[str, float] = {}
    for e in events:
        played[e.stimulus_id] = played.get(e.stimulus_id, 0.0) + e.duration_s
    played = credited_seconds(played, store.open_seconds(participant, index))  # never more than the server saw
    order = participant.orders[index]
    labels = dict(zip([trial.stimuli[k] for k in order], labels_for(definition.design, len(trial.stimuli)),
                      strict=True)) | ({trial.reference: "Reference"} if trial.reference else {})
    unplayed = [labels[s] for s in must_play(definition.design, trial) if played.get(s, 0.0) < MIN_PLAY_S]
    problems = [f"play {', '.join(sorted(unplayed))} first"] if unplayed else []
    scores = answer = None
    if definition.design in RATED_DESIGNS:
        scores = {ids[k]: v for k, v in raw.items()}
        unrated = [labels[s] for s in trial.stimuli if s not in scores]
        if unrated:
            problems.append(f"rate {', '.join(sorted(unrated, key=_label_key))}")
    else:
        answer = payload.get("answer")
        if answer is None:
            problems.append("choose an answer")
    if problems:
        return problems
    try:
        store.submit(definition, participant, index, scores=scores, answer=answer, events=events)
    except ListenError as exc:
        return [str(exc)]
    return []


def handle_questionnaire(store: ListeningStore, definition: TestDefinition, participant: Participant,
                         answers) -> list[str]:
    """Check and store the finish page's answers ``{question id: answer}`` (the standard questions and the
    test's own); returns the problems (nothing stored) or ``[]`` (stored, or answered before)."""
    if len(store.done_trials(participant)) < len(definition.trials_for(participant.slot)):
        return ["finish the trials first"]
    checked, problems = check_answers(all_questions(definition.questionnaire), answers)
    if problems:
        return problems
    store.save_questionnaire(participant, checked)
    return []
