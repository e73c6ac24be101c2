"""How long participants listened: per trial, the seconds each stimulus was played and the time on the trial.

Only server clocks are trusted. The server stores when it first delivered a trial to the participant and when the
submission arrived; their difference is the time on the trial (pauses and reloads included). The player reports
play intervals (stimulus, seconds of audio played); only one stimulus plays at a time, so their total cannot
exceed the time the trial was open. When it does (a scripted or tampered client), every stimulus' seconds are
scaled down by the same factor so that the total equals that time (:func:`credited_seconds`): a client can never
be credited with more listening than the server saw elapse, and a trial the server never delivered is credited
with none. Looped playback counts as time listened, whatever part of the stimulus the loop covered.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

FULL_TOLERANCE_S = 0.001  # the player reports durations to the millisecond


def credited_seconds(claimed_s: Mapping[str, float], elapsed_s: float) -> dict[str, float]:
    """Seconds of listening credited per stimulus: the client's claims, scaled down together so that their total
    is at most ``elapsed_s`` (server time the trial was open; NaN: never delivered, nothing credited).

    >>> credited_seconds({"a": 3.0, "b": 1.0}, 10.0), credited_seconds({"a": 3.0, "b": 1.0}, 2.0)
    ({'a': 3.0, 'b': 1.0}, {'a': 1.5, 'b': 0.5})
    """
    elapsed = elapsed_s if math.isfinite(elapsed_s) and elapsed_s > 0 else 0.0
    total = sum(claimed_s.values())
    if total <= elapsed:
        return dict(claimed_s)
    return {k: v * elapsed / total for k, v in claimed_s.items()}


@dataclass(frozen=True)
class StimulusListening:
    """Seconds one stimulus of a trial was credited as played, and its length (seconds)."""

    stimulus_id: str
    condition: str
    listened_s: float
    length_s: float

    @property
    def fraction(self) -> float:
        """Seconds listened over the stimulus length (above 1 when heard more than once)."""
        return self.listened_s / self.length_s if self.length_s > 0 else math.nan

    @property
    def played_fully(self) -> bool:
        return self.listened_s >= self.length_s - FULL_TOLERANCE_S


@dataclass(frozen=True)
class TrialListening:
    """One stored trial's listening record. ``time_on_trial_s`` is NaN (and ``stimuli`` empty) for a trial stored
    before the server recorded listening, or never delivered by it."""

    assessor: str
    trial_index: int
    item: str
    time_on_trial_s: float  # server: first delivery of the trial -> its submission
    claimed_s: float  # total seconds of play the client reported (before the clamp)
    stimuli: tuple[StimulusListening, ...]

    @property
    def clamped(self) -> bool:
        """Whether the client claimed more listening than the time the trial was open (never for a trial without a
        server timing: nothing to compare the claim with)."""
        if not math.isfinite(self.time_on_trial_s):
            return False
        return sum(s.listened_s for s in self.stimuli) < self.claimed_s - FULL_TOLERANCE_S


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else None


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass(frozen=True)
class TrialExclusion:
    """A trial left out of the analysis by ``--min-played`` (``trial``: its index in the assessor's list, from 0)."""

    assessor: str
    trial: int
    item: str
    reason: str


@dataclass(frozen=True)
class ParticipantBehaviour:
    """One assessor's listening over every stored trial (``played_fully_share``: a fraction 0-1; None: no data)."""

    assessor: str
    trials: int
    median_time_on_trial_s: float | None
    played_fully_share: float | None
    clamped_trials: int


@dataclass(frozen=True)
class ConditionBehaviour:
    """How long one condition's stimuli were heard, over every stored trial (medians over stimuli)."""

    condition: str
    label: str
    stimuli: int
    median_listened_s: float | None
    median_fraction: float | None
    played_fully_share: float | None


@dataclass(frozen=True)
class Behaviour:
    """The listening behaviour of a test folder (:func:`summary`)."""

    participants: list[ParticipantBehaviour]
    conditions: list[ConditionBehaviour]
    min_played_pct: float | None
    trials: int
    timed_trials: int  # trials with a server timing (the others were stored before it, or never delivered)
    excluded_trials: list[TrialExclusion]
    method: str

    def as_json(self) -> dict:
        """The report's ``behaviour`` object: these fields, in this order."""
        return asdict(self)


def trial_exclusions(trials: Iterable[TrialListening], min_played_pct: float,
                     labels: Mapping[str, str] | None = None) -> list[TrialExclusion]:
    """Every trial in which some stimulus (the open reference included) was credited with less than
    ``min_played_pct`` % of its length, or which has no listening record."""
    name = (labels or {}).get
    out = []
    for t in trials:
        if not t.stimuli:
            reason = "no server-side listening record"
        else:
            short = [s for s in t.stimuli if not 100 * s.fraction >= min_played_pct]
            if not short:
                continue
            heard = ", ".join(f"{name(s.condition, s.condition)} played {100 * s.fraction:.0f} %"
                              for s in sorted(short, key=lambda s: s.fraction))
            reason = f"{heard} of its length (< {min_played_pct:g} %)"
        out.append(TrialExclusion(t.assessor, t.trial_index, t.item, reason))
    return out


def summary(trials: list[TrialListening], min_played_pct: float | None = None,
            labels: Mapping[str, str] | None = None) -> Behaviour:
    """Listening behaviour over every stored trial, per participant and per condition (medians over trials or
    stimuli; shares are fractions 0-1), and the trials ``min_played_pct`` leaves out."""
    labels = labels or {}
    by_assessor: dict[str, list[TrialListening]] = defaultdict(list)
    by_condition: dict[str, list[StimulusListening]] = defaultdict(list)
    for t in trials:
        by_assessor[t.assessor].append(t)
        for s in t.stimuli:
            by_condition[s.condition].append(s)
    participants = [ParticipantBehaviour(a, len(ts), _median([t.time_on_trial_s for t in ts]),
                                         _share([s.played_fully for t in ts for s in t.stimuli]),
                                         sum(t.clamped for t in ts)) for a, ts in sorted(by_assessor.items())]
    conditions = [ConditionBehaviour(c, labels.get(c, c), len(ss), _median([s.listened_s for s in ss]),
                                     _median([s.fraction for s in ss]), _share([s.played_fully for s in ss]))
                  for c, ss in sorted(by_condition.items())]
    timed = sum(math.isfinite(t.time_on_trial_s) for t in trials)
    excluded = trial_exclusions(trials, min_played_pct, labels) if min_played_pct is not None else []
    return Behaviour(participants, conditions, min_played_pct, len(trials), timed, excluded,
                     "server clock: time on trial from the trial's first delivery to its submission; seconds "
                     "listened as reported by the player, scaled down together to at most the time on trial")


def format_behaviour(behaviour: Behaviour | dict | None) -> str:
    """Plain-text tables of :func:`summary` or of a report's ``behaviour`` (empty for a report without a test
    folder)."""
    if isinstance(behaviour, Behaviour):
        behaviour = behaviour.as_json()
    if not behaviour:
        return ""

    def f(x, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    def pct(x) -> str:
        return "-" if x is None else f"{100 * x:.0f}"

    lines = ["listening behaviour (server clock; median time on trial, share of stimuli played fully):"]
    for p in behaviour["participants"]:
        lines.append(f"  {p['assessor']}: {p['trials']} trials, median {f(p['median_time_on_trial_s'], '.1f')} s "
                     f"on a trial, {pct(p['played_fully_share'])} % "
                     f"of stimuli played fully" + (f", {p['clamped_trials']} trials claimed more listening than "
                                                   f"their time" if p["clamped_trials"] else ""))
    for c in behaviour["conditions"]:
        lines.append(f"  {c['label']}: {c['stimuli']} stimuli, median {f(c['median_listened_s'], '.1f')} s "
                     f"({pct(c['median_fraction'])} % of its length), "
                     f"{pct(c['played_fully_share'])} % played fully")
    if behaviour["min_played_pct"] is not None:
        excluded = behaviour["excluded_trials"]
        lines.append(f"--min-played {behaviour['min_played_pct']:g}: {len(excluded)} of {behaviour['trials']} "
                     "trials excluded" + (":" if excluded else ""))
        lines += [f"  {e['assessor']} trial {e['trial'] + 1} ({e['item']}): {e['reason']}" for e in excluded]
    return "\n".join(lines)
