"""What a participant's browser receives and sends, checked on the server (no Streamlit here).

:func:`player_data` is everything the player gets for a trial: stimulus ids, their ``app/static/<id>.wav`` URLs
and neutral labels, never a condition name or a path. :func:`handle_submission` re-checks what the player already
enforces (every stimulus played, every one rated or an answer given) and stores the trial in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from evalkit.listening.model import Design, ListenError, PlayEvent, TestDefinition, Trial
from evalkit.listening.storage import ListeningStore, Participant

MIN_PLAY_S = 0.25  # seconds of audio a stimulus must have been played before it counts as heard
MAX_EVENTS = 5000
STATIC_URL = "app/static"  # relative to the page, so a server.baseUrlPath keeps working


def labels_for(design: Design, count: int) -> list[str]:
    """Neutral labels of a trial's rated stimuli: 1…n for MUSHRA, A/B(/X) otherwise."""
    return [str(k + 1) for k in range(count)] if design is Design.MUSHRA else ["A", "B", "X"][:count]


def player_data(definition: TestDefinition, trial: Trial, trial_key: str, training: bool,
                order: Iterable[int] | None = None) -> dict:
    """The JSON the player component receives for one trial (display order applied)."""
    order = list(order) if order is not None else list(range(len(trial.stimuli)))
    ids = [trial.stimuli[k] for k in order]
    first = definition.stimuli[ids[0]]
    return {
        "mode": str(definition.design),
        "training": training,
        "trial_key": trial_key,
        "sample_rate": first.sample_rate,
        "allow_no_preference": definition.design is Design.AB,
        "reference": ({"id": trial.reference, "url": f"{STATIC_URL}/{trial.reference}.wav", "label": "Reference"}
                      if trial.reference else None),
        "stimuli": [{"id": sid, "url": f"{STATIC_URL}/{sid}.wav", "label": label}
                    for sid, label in zip(ids, labels_for(definition.design, len(ids)), strict=True)],
    }


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
