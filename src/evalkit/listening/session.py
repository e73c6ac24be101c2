"""What a participant's browser receives and sends, checked on the server (no Streamlit here).

:func:`player_data` is everything the player gets for a trial: stimulus ids, their ``app/static/<id>.wav`` URLs
and neutral labels, never a condition name or a path. :func:`handle_submission` re-checks what the player already
enforces (every stimulus played, every one rated or an answer given) and stores the trial in one transaction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from evalkit.listening.headphone import score
from evalkit.listening.model import Design, ListenError, PlayEvent, TestDefinition, Trial
from evalkit.listening.storage import ListeningStore, Participant

MIN_PLAY_S = 0.25  # seconds of audio a stimulus must have been played before it counts as heard
MAX_EVENTS = 5000
MAX_DRAFT_BYTES = 200_000
STATIC_URL = "app/static"  # relative to the page, so a server.baseUrlPath keeps working
PLAYS_PER_SIGNAL = 2  # expected duration: every signal heard about twice ...
ANSWER_S = 10.0  # ... plus this per trial for rating or answering
HEADPHONE_CHECK_S = 90.0


def url(definition: TestDefinition, stimulus_id: str) -> str:
    return f"{STATIC_URL}/{definition.file_name(stimulus_id)}"


def trial_urls(definition: TestDefinition, trial: Trial) -> list[str]:
    return [url(definition, s) for s in ([trial.reference] if trial.reference else []) + list(trial.stimuli)]


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
    """Neutral labels of a trial's rated stimuli: 1…n for MUSHRA, A/B(/X) otherwise."""
    return [str(k + 1) for k in range(count)] if design is Design.MUSHRA else ["A", "B", "X"][:count]


def player_data(definition: TestDefinition, trial: Trial, trial_key: str, training: bool,
                order: Iterable[int] | None = None, *, draft: dict | None = None, prefetch: Trial | None = None,
                require_play: bool = False) -> dict:
    """The JSON the player component receives for one trial (display order applied). ``draft``: the trial's
    stored state (restored by the player); ``prefetch``: the next trial, whose files the player fetches and
    decodes once this trial's audio is loaded; ``require_play``: training only, every signal must be played
    before the test starts."""
    order = list(order) if order is not None else list(range(len(trial.stimuli)))
    ids = [trial.stimuli[k] for k in order]
    first = definition.stimuli[ids[0]]
    return {
        "mode": str(definition.design),
        "training": training,
        "require_play": require_play,
        "trial_key": trial_key,
        "sample_rate": first.sample_rate,
        "allow_no_preference": definition.design is Design.AB,
        "reference": ({"id": trial.reference, "url": url(definition, trial.reference), "label": "Reference"}
                      if trial.reference else None),
        "stimuli": [{"id": sid, "url": url(definition, sid), "label": label}
                    for sid, label in zip(ids, labels_for(definition.design, len(ids)), strict=True)],
        "draft": draft,
        "prefetch": None if prefetch is None else {
            "sample_rate": definition.stimuli[prefetch.stimuli[0]].sample_rate,
            "urls": trial_urls(definition, prefetch)},
    }


def headphone_data(definition: TestDefinition) -> dict:
    """What the headphone-check component gets: calibration and trial URLs, never the answers."""
    check = definition.headphone
    if check is None:
        raise ListenError("this test has no headphone check")
    return {"calibration": url(definition, check.calibration),
            "trials": [{"id": t.stimulus_id, "url": url(definition, t.stimulus_id)} for t in check.trials]}


def handle_headphone_check(store: ListeningStore, definition: TestDefinition, participant: Participant,
                           payload) -> list[str]:
    """Score and store the screening answers ``{"responses": {stimulus id: 1|2|3}}``; returns the problems."""
    check = definition.headphone
    if check is None or not isinstance(payload, dict) or not isinstance(payload.get("responses"), dict):
        return ["this page is out of date; reload it"]
    responses = payload["responses"]
    ids = [t.stimulus_id for t in check.trials]
    if set(responses) != set(ids) or not all(responses[k] in (1, 2, 3) for k in ids):
        return ["answer every sound with 1, 2 or 3"]
    correct, passed = score(check, {k: int(responses[k]) for k in ids})
    store.save_headphone_check(participant, passed, correct, len(ids),
                               {"method": check.method, "pass_correct": check.pass_correct,
                                "responses": [int(responses[k]) for k in ids]})
    return []


def handle_draft(store: ListeningStore, definition: TestDefinition, participant: Participant, index: int,
                 payload) -> bool:
    """Keep the state of trial ``index`` sent by the player (ratings, answer, play events, loop and position);
    anything malformed or for another trial is ignored (False)."""
    if not isinstance(payload, dict) or payload.get("trial") != f"trial-{index}":
        return False
    if len(json.dumps(payload)) > MAX_DRAFT_BYTES:
        return False
    trial = definition.trials_for(participant.slot)[index]
    known = set(trial.stimuli) | ({trial.reference} if trial.reference else set())
    try:
        events = [e for e in _events(payload.get("events", [])) if e.stimulus_id in known]
    except ListenError:
        return False
    ratings = payload.get("ratings") if isinstance(payload.get("ratings"), dict) else {}
    ratings = {k: float(v) for k, v in ratings.items() if k in trial.stimuli and isinstance(v, int | float)
               and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 100}
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


def handle_submission(store: ListeningStore, definition: TestDefinition, participant: Participant, index: int,
                      payload) -> list[str]:
    """Check and store one trial; returns the problems (nothing stored) or ``[]`` (stored, or stored before)."""
    if not isinstance(payload, dict) or payload.get("trial") != f"trial-{index}":
        return ["this page is out of date; reload it"]
    trial = definition.trials_for(participant.slot)[index]
    try:
        events = _events(payload.get("events", []))
    except ListenError as exc:
        return [str(exc)]
    played: dict[str, float] = {}
    for e in events:
        played[e.stimulus_id] = played.get(e.stimulus_id, 0.0) + e.duration_s
    order = participant.orders[index]
    labels = dict(zip([trial.stimuli[k] for k in order], labels_for(definition.design, len(trial.stimuli)),
                      strict=True))
    unplayed = [labels[s] for s in trial.stimuli if played.get(s, 0.0) < MIN_PLAY_S]
    problems = [f"play {', '.join(sorted(unplayed))} first"] if unplayed else []
    scores = answer = None
    if definition.design is Design.MUSHRA:
        raw = payload.get("ratings")
        scores = raw if isinstance(raw, dict) else {}
        unrated = [labels[s] for s in trial.stimuli if s not in scores]
        if unrated:
            problems.append(f"rate {', '.join(sorted(unrated, key=int))}")
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
