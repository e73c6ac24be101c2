"""Which design slot a participant gets, and when an abandoned one is given back (pure; the store does the SQL).

A participant takes a slot when its first trial starts (not at consent), and holds it while it is active: finished,
or seen by the server (a page, a draft, a submission) within the last ``idle_s`` seconds. A slot held by nobody
active is released, so a new participant can take it: the next one gets the slot with the fewest finished
participants, then the fewest active ones, then the lowest index. A released participant who comes back keeps its
slot if nobody who still holds it claimed it after the release; otherwise it gets a new slot (the store starts it
afresh there, see :meth:`evalkit.listening.storage.ListeningStore.hold_slot`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SLOT_IDLE_MINUTES = 30.0  # default of `listen serve --slot-idle-minutes`


@dataclass(frozen=True)
class SlotHolder:
    """A participant with a slot, as the server last saw it (times in server seconds since the epoch)."""

    participant_id: int
    slot: int
    claimed_s: float  # when it took (or took back) the slot
    seen_s: float  # its last page, draft or submission
    finished: bool


def holds(holder: SlotHolder, now_s: float, idle_s: float) -> bool:
    """Whether ``holder`` still counts for its slot: finished, or seen within ``idle_s``.

    >>> seen_at_100, seen_at_99 = SlotHolder(1, 0, 0.0, 100.0, False), SlotHolder(2, 0, 0.0, 99.0, False)
    >>> holds(seen_at_100, 1900.0, 1800.0), holds(seen_at_99, 1900.0, 1800.0)
    (True, False)
    """
    return holder.finished or now_s - holder.seen_s <= idle_s


def slot_counts(n_slots: int, holders: Iterable[SlotHolder], now_s: float, idle_s: float) -> list[tuple[int, int]]:
    """Per slot: (finished participants, active unfinished ones); released participants count for nothing."""
    counts = [[0, 0] for _ in range(n_slots)]
    for h in holders:
        if holds(h, now_s, idle_s):
            counts[h.slot % n_slots][0 if h.finished else 1] += 1
    return [(done, active) for done, active in counts]


def least_completed(n_slots: int, holders: Iterable[SlotHolder], now_s: float, idle_s: float) -> int:
    """The slot a new participant gets: fewest finished, then fewest active participants, then lowest index.

    >>> h = [SlotHolder(1, 0, 0, 0, True), SlotHolder(2, 1, 0, 0, False)]  # slot 0 done, slot 1 abandoned
    >>> least_completed(2, h, 10.0, 60.0), least_completed(2, h, 100.0, 60.0)
    (1, 1)
    >>> least_completed(3, h, 10.0, 60.0)
    2
    """
    counts = slot_counts(n_slots, holders, now_s, idle_s)
    return min(range(n_slots), key=lambda s: (*counts[s], s))


def may_continue(me: SlotHolder, others: Iterable[SlotHolder], now_s: float, idle_s: float) -> bool:
    """Whether ``me`` keeps its slot now: it was never released (finished or active), or nobody who still holds
    the slot claimed it after ``me`` was released (``seen_s + idle_s``)."""
    if holds(me, now_s, idle_s):
        return True
    released_s = me.seen_s + idle_s
    return not any(o.participant_id != me.participant_id and o.slot == me.slot and o.claimed_s >= released_s
                   and holds(o, now_s, idle_s) for o in others)
