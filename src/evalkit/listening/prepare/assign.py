"""Trials of a test and their assignment to listener slots (pure, given a ``write`` callback and a seeded rng).

Every presented trial gets stimulus files of its own (fresh random ids), so no id links two trials: an AB/ABX pair
shown twice (``--repeats``) or in two pairs cannot be recognised by its ids. Within each listener, AB/ABX sides are
balanced (the first condition on A in half of the trials, shuffled) and, for ABX, X = A in half of the trials and
X = B in the other half (shuffled, independently of the sides); listener 2m+1 gets the complement of listener 2m,
so each trial is also shown both ways over every two listeners. ACR and DCR show one condition per trial (the
hidden reference is one of the conditions, P.808's usual reference condition); BS.1116 shows the open reference and
two signals, the hidden reference and the condition, on sides balanced as AB's are.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np

from evalkit.listening.model import ANCHOR_LOW, ANCHOR_MID, OPEN_REFERENCE, REFERENCE, Design, Trial
from evalkit.listening.prepare.stimuli import balanced_orders

Write = Callable[[str, str, str | None], str]  # (item, condition, stored name or None) -> new stimulus id


def make_trials(design: Design, items: list[str], conditions: list[str], pairs: list[tuple[str, str]],
                repeats: int, write: Write) -> dict[str, list[Trial]]:
    """The canonical trials of each item, every one with its own files. MUSHRA: (hidden reference, anchors,
    conditions) + the open reference. AB: (a, b). ABX: (a, b, copy of a, copy of b); :func:`assign` picks the
    sides and X per listener. ACR: (signal,) for the hidden reference and each condition; DCR: the same, each
    after an open reference of its own; BS.1116: (hidden reference, condition) + the open reference, per
    condition."""
    out: dict[str, list[Trial]] = {}
    for item in items:
        if design in (Design.ACR, Design.DCR, Design.BS1116):
            out[item] = [_graded_trial(design, item, name, write)
                         for name in ((REFERENCE, *conditions) if design is not Design.BS1116 else conditions)]
            continue
        if design is Design.MUSHRA:
            reference = write(item, REFERENCE, OPEN_REFERENCE)
            rated = [write(item, n, None) for n in (REFERENCE, ANCHOR_LOW, ANCHOR_MID, *conditions)]
            out[item] = [Trial(item, tuple(rated), reference)]
            continue
        trials = []
        for _ in range(repeats):
            for a, b in pairs:
                ids = (write(item, a, None), write(item, b, None))
                if design is Design.ABX:
                    ids += (write(item, a, None), write(item, b, None))
                trials.append(Trial(item, ids))
        out[item] = trials
    return out


def _graded_trial(design: Design, item: str, condition: str, write: Write) -> Trial:
    """An ACR, DCR or BS.1116 trial of ``condition`` (BS.1116: hidden reference first; :func:`assign` sides it)."""
    if design is Design.ACR:
        return Trial(item, (write(item, condition, None),))
    reference = write(item, REFERENCE, OPEN_REFERENCE)
    if design is Design.DCR:
        return Trial(item, (write(item, condition, None),), reference)
    return Trial(item, (write(item, REFERENCE, None), write(item, condition, None)), reference)


def training_trial(design: Design, item: str, conditions: list[str], pairs: list[tuple[str, str]],
                   write: Write) -> Trial:
    """The training screen: the signals of one item in files of their own (never reused by a rated trial). ACR,
    DCR and BS.1116: a trial of the first condition (not scored)."""
    if design in (Design.ACR, Design.DCR, Design.BS1116):
        return _graded_trial(design, item, conditions[0], write)
    if design is Design.MUSHRA:
        reference = write(item, REFERENCE, OPEN_REFERENCE)
        return Trial(item, tuple(write(item, n, None) for n in (REFERENCE, ANCHOR_LOW, ANCHOR_MID, *conditions)),
                     reference)
    a, b = pairs[0]
    ids = (write(item, a, None), write(item, b, None))
    x = a if secrets.randbelow(2) == 0 else b  # training is not scored: X is either side
    return Trial(item, ids + ((write(item, x, None),) if design is Design.ABX else ()))


def half_flags(n: int, rng: np.random.Generator, extra: bool = False) -> np.ndarray:
    """``n`` booleans, ``n // 2`` of them true (one more for odd ``n`` with ``extra``), in a random order.

    >>> int(half_flags(7, np.random.default_rng(0)).sum()), int(half_flags(7, np.random.default_rng(0), True).sum())
    (3, 4)
    """
    flags = np.zeros(n, dtype=bool)
    flags[: n // 2 + (n % 2 if extra else 0)] = True
    return flags[rng.permutation(n)]


def assign(design: Design, items: list[str], trials_by_item: dict[str, list[Trial]], listeners: int,
           rng: np.random.Generator) -> tuple[tuple[Trial, ...], ...]:
    """Per listener slot: the trials in a balanced Latin-square order, AB/ABX/BS.1116 sides and ABX's X
    balanced."""
    flat = [t for item in items for t in trials_by_item[item]]
    orders = balanced_orders(len(flat), listeners, rng)
    swap = x_is_a = np.zeros(len(flat), dtype=bool)
    slots = []
    for k, order in enumerate(orders):
        if k % 2 == 0:  # flags indexed by canonical trial; listener k+1 gets the complement. For an odd number of
            # trials the extra one alternates, so 4 listeners see a single trial in all 4 side / X combinations
            m = k // 2
            swap, x_is_a = half_flags(len(flat), rng, m % 2 == 1), half_flags(len(flat), rng, (m // 2) % 2 == 1)
        else:
            swap, x_is_a = ~swap, ~x_is_a
        slot = []
        for j in order:
            t = flat[j]
            if design in (Design.MUSHRA, Design.ACR, Design.DCR):
                slot.append(t)
                continue
            first_on_a = not swap[j]
            a, b = (t.stimuli[0], t.stimuli[1]) if first_on_a else (t.stimuli[1], t.stimuli[0])
            if design in (Design.AB, Design.BS1116):
                slot.append(Trial(t.item, (a, b), t.reference))
                continue
            x_is_first = bool(x_is_a[j]) == first_on_a  # X copies the condition shown on A, or the other one
            slot.append(Trial(t.item, (a, b, t.stimuli[2] if x_is_first else t.stimuli[3])))
        slots.append(tuple(slot))
    return tuple(slots)
