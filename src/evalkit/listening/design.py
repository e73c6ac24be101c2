"""``evalkit listen prepare``: from an evaluation run to a test folder (stimuli + ``test.json``).

Items and conditions come from the run's decoded cache (:mod:`evalkit.listening.runsource`). Every item is cut
to one excerpt (same samples for all conditions, short fades), the hidden reference and the BS.1534-3 anchors
are added (taken from the run when it has them, else built from the reference with the same filter), every
stimulus is loudness-matched (BS.1770) to one target, and written as 24-bit WAV under a random id.
"""

from __future__ import annotations

import itertools
import math
import secrets
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalkit.listening.model import (
    ANCHOR_LOW,
    ANCHOR_MID,
    ANCHOR_SPECS,
    DEFINITION_FILE,
    MAX_SIGNALS_PER_TRIAL,
    OPEN_REFERENCE,
    REFERENCE,
    STIMULI_DIR,
    Design,
    ListenError,
    Stimulus,
    TestDefinition,
    Trial,
    validate_definition,
)
from evalkit.listening.runsource import RunContents, RunUnit, read_run
from evalkit.listening.stimuli import apply_fades, balanced_orders, choose_excerpt, loudness_gains_db

TRIAL_SIZE = {Design.AB: 2, Design.ABX: 3}  # stimuli per AB/ABX trial (MUSHRA: all conditions)


@dataclass(frozen=True)
class PrepareOptions:
    design: Design
    items: int | None = None  # None: every item that has all conditions
    conditions: tuple[str, ...] = ()  # codec specs of the run; empty: all of its variants
    listeners: int = 12
    seed: int = 0
    excerpt_s: float = 10.0
    max_excerpt_s: float = 12.0
    target_lufs: float = -23.0


def _canonical(spec: str) -> str:
    from evalkit.codecs import parse_spec
    from evalkit.codecs.spec import SpecError

    try:
        return str(parse_spec(spec))
    except SpecError:
        return spec


def select_conditions(run: RunContents, design: Design, requested: tuple[str, ...]) -> list[str]:
    """The codec specs to test (anchors excluded: they are added separately).

    Raises:
        ListenError: a requested spec the run does not have (decoded), or too many / too few conditions.
    """
    available = run.specs
    by_canonical = {_canonical(s): s for s in available}
    anchors = {_canonical(s) for s in ANCHOR_SPECS.values()}
    if requested:
        chosen = []
        for spec in requested:
            found = spec if spec in available else by_canonical.get(_canonical(spec))
            if found is None:
                why = run.unavailable.get(spec) or run.unavailable.get(_canonical(spec))
                raise ListenError(f"--conditions: {spec} has no decoded audio in {run.run_dir}"
                                  + (f" ({why})" if why else "") + f"; available: {', '.join(available) or 'none'}")
            chosen.append(found)
    else:
        chosen = [s for s in available if _canonical(s) not in anchors]
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        skipped = "; ".join(f"{s}: {r}" for s, r in sorted(run.unavailable.items()))
        raise ListenError(f"{run.run_dir}: no codec variant with decoded audio besides the anchors"
                          + (f" (unavailable: {skipped})" if skipped else ""))
    if design is Design.MUSHRA and len(chosen) + 3 > MAX_SIGNALS_PER_TRIAL:
        raise ListenError(f"--conditions: {len(chosen)} conditions + hidden reference + 2 anchors exceed "
                          f"{MAX_SIGNALS_PER_TRIAL} signals per trial (BS.1534-3); choose at most "
                          f"{MAX_SIGNALS_PER_TRIAL - 3} of: {', '.join(chosen)}")
    if design is not Design.MUSHRA and len(chosen) < 2:
        raise ListenError(f"--conditions: {design} needs at least two conditions to pair, got {chosen}")
    return chosen


def ab_pairs(conditions: list[str]) -> list[tuple[str, str]]:
    """Pairs for AB/ABX: each KLT variant against its base when both are chosen, otherwise every pair."""
    klt = []
    for spec in conditions:
        if spec.startswith("klt?"):
            params = dict(p.split("=", 1) for p in spec.split("?", 1)[1].split("&") if "=" in p)
            base = params.get("base", "")
            for other in conditions:
                if other.startswith(base + "?") or other == base:
                    rest = dict(p.split("=", 1) for p in other.split("?", 1)[1].split("&")) if "?" in other else {}
                    if all(params.get(k) == v for k, v in rest.items()):
                        klt.append((spec, other))
    return klt or list(itertools.combinations(conditions, 2))


def pick_items(units_by_item: dict[str, dict[str, RunUnit]], count: int | None, rng: np.random.Generator) -> list[str]:
    """``count`` items chosen at random but spread over categories (round robin), in a seeded order."""
    ids = sorted(units_by_item)
    if count is None or count >= len(ids):
        return [ids[i] for i in rng.permutation(len(ids))]
    by_cat: dict[str, list[str]] = defaultdict(list)
    for i in rng.permutation(len(ids)):
        item = ids[i]
        by_cat[next(iter(units_by_item[item].values())).category].append(item)
    picked, queues = [], [by_cat[c] for c in sorted(by_cat)]
    while len(picked) < count:
        for q in queues:
            if q and len(picked) < count:
                picked.append(q.pop(0))
    return picked


def prepare_test(run_dir: str | Path, out_dir: str | Path, options: PrepareOptions) -> TestDefinition:
    """Build a test folder: ``static/<id>.wav`` stimuli and ``test.json``.

    Raises:
        ListenError: bad run folder, conditions or items; stimuli of one trial with different rate, length or
            channels; an existing test folder.
    """
    from evalkit import audio as audio_lib
    from evalkit.codecs.anchors import lowpass

    out_dir = Path(out_dir)
    if (out_dir / DEFINITION_FILE).exists() or (out_dir / STIMULI_DIR).exists():
        raise ListenError(f"{out_dir}: already holds a test ({DEFINITION_FILE} or {STIMULI_DIR}/); "
                          "choose another --out")
    if options.listeners < 1:
        raise ListenError(f"--listeners: expected an integer >= 1, got {options.listeners}")
    if options.items is not None and options.items < 1:
        raise ListenError(f"--items: expected an integer >= 1, got {options.items}")
    run = read_run(run_dir)
    rng = np.random.default_rng(options.seed)
    conditions = select_conditions(run, options.design, options.conditions)
    anchor_spec_of = {_canonical(s): name for name, s in ANCHOR_SPECS.items()}
    units_by_item: dict[str, dict[str, RunUnit]] = defaultdict(dict)
    for u in run.units:
        units_by_item[u.item_id][u.codec_spec] = u
    complete = {i: us for i, us in units_by_item.items() if all(c in us for c in conditions)}
    if not complete:
        raise ListenError(f"{run.run_dir}: no item has decoded audio for every condition ({', '.join(conditions)})")
    items = pick_items(complete, options.items, rng)

    signals: dict[tuple[str, str], np.ndarray] = {}
    rates: dict[str, int] = {}
    notes: list[str] = []
    for item in items:
        units = complete[item]
        any_unit = units[conditions[0]]
        ref = audio_lib.load(any_unit.item_path)
        start, end = choose_excerpt(ref.samples, ref.sample_rate, options.excerpt_s, options.max_excerpt_s)
        rates[item] = ref.sample_rate
        named = {REFERENCE: ref.samples}
        for spec in conditions:
            named[spec] = audio_lib.load(units[spec].decoded_path, allow_silent=True).samples
        if options.design is Design.MUSHRA:
            run_anchors = {anchor_spec_of[_canonical(s)]: u for s, u in units.items()
                           if _canonical(s) in anchor_spec_of}
            for name, spec in ANCHOR_SPECS.items():
                if name in run_anchors:
                    named[name] = audio_lib.load(run_anchors[name].decoded_path, allow_silent=True).samples
                else:
                    cutoff = float(spec.split("=")[1])
                    named[name] = lowpass(ref.samples, cutoff, ref.sample_rate)
        for name, x in named.items():
            if x.shape != ref.samples.shape:
                where = units[name].decoded_path if name in units else name
                raise ListenError(f"{where}: item {item}: shape {x.shape} (channels, samples) differs from the "
                                  f"reference's {ref.samples.shape}; stimuli of a trial must match")
            signals[(item, name)] = apply_fades(x[:, start:end], ref.sample_rate)
        if end - start < ref.num_samples:
            notes.append(f"{item}: excerpt {start / ref.sample_rate:.2f}-{end / ref.sample_rate:.2f} s")

    loud = {k: audio_lib.loudness_lufs(x, rates[k[0]]) for k, x in signals.items()}
    peaks = {k: float(np.max(np.abs(x))) for k, x in signals.items()}
    gains, target = loudness_gains_db({str(k): v for k, v in loud.items()}, {str(k): v for k, v in peaks.items()},
                                      options.target_lufs)
    if target != options.target_lufs:
        notes.append(f"loudness target lowered to {target} LUFS to avoid clipping")
    for k, v in loud.items():
        if not math.isfinite(v):
            notes.append(f"{k[0]} / {k[1]}: below the BS.1770 gate, left unscaled")

    static = out_dir / STIMULI_DIR
    static.mkdir(parents=True, exist_ok=True)
    stimuli: dict[str, Stimulus] = {}

    def write(item: str, name: str, label: str | None = None) -> str:
        sid = secrets.token_hex(8)
        x = signals[(item, name)] * np.float32(10 ** (gains[str((item, name))] / 20))
        audio_lib.save(static / f"{sid}.wav", np.clip(x, -1.0, 1.0), rates[item], subtype="PCM_24")
        stimuli[sid] = Stimulus(sid, item, label or name, rates[item], x.shape[0], x.shape[1])
        return sid

    try:
        trials_by_item = _make_trials(options.design, items, conditions, write)
        slots = _assign(options.design, items, trials_by_item, options.listeners, rng)
        first = trials_by_item[items[0]][0]
        definition = TestDefinition(
            options.design, options.seed, str(run.run_dir), tuple(items),
            {c: c for c in conditions} | ({ANCHOR_LOW: ANCHOR_SPECS[ANCHOR_LOW], ANCHOR_MID: ANCHOR_SPECS[ANCHOR_MID]}
                                          if options.design is Design.MUSHRA else {}),
            stimuli, slots, Trial(first.item, first.stimuli[:TRIAL_SIZE.get(options.design)], first.reference),
            target, tuple(notes),
            tuple(ab_pairs(conditions)) if options.design is not Design.MUSHRA else ())
        problems = validate_definition(definition, out_dir)
        if problems:
            raise ListenError(f"{out_dir}: {problems[0]}")
        definition.save(out_dir)
    except BaseException:
        shutil.rmtree(static, ignore_errors=True)
        raise
    return definition


def _make_trials(design: Design, items: list[str], conditions: list[str], write) -> dict[str, list[Trial]]:
    """Write every stimulus once and return the canonical trials of each item (AB/ABX: one per pair, A first;
    ABX: X = A; :func:`_assign` swaps sides per listener)."""
    out: dict[str, list[Trial]] = {}
    for item in items:
        if design is Design.MUSHRA:
            reference = write(item, REFERENCE, OPEN_REFERENCE)
            rated = [write(item, n) for n in (REFERENCE, ANCHOR_LOW, ANCHOR_MID, *conditions)]
            out[item] = [Trial(item, tuple(rated), reference)]
            continue
        ids = {c: write(item, c) for c in conditions}
        trials = []
        for a, b in ab_pairs(conditions):
            if design is Design.AB:
                trials.append(Trial(item, (ids[a], ids[b])))
            else:  # X gets its own ids (copies), so the browser cannot match X to A or B by id
                trials.append(Trial(item, (ids[a], ids[b], write(item, a), write(item, b))))
        out[item] = trials
    return out


def _assign(design: Design, items: list[str], trials_by_item: dict[str, list[Trial]], listeners: int,
            rng: np.random.Generator) -> tuple[tuple[Trial, ...], ...]:
    """Per listener slot: items in a balanced Latin-square order; AB sides swapped and ABX's X chosen so that over
    every 4 consecutive listeners each trial appears in all side/X combinations."""
    flat = [(item, t) for item in items for t in trials_by_item[item]]
    orders = balanced_orders(len(flat), listeners, rng)
    slots = []
    for k, order in enumerate(orders):
        slot = []
        for j in order:
            item, t = flat[j]
            if design is Design.MUSHRA:
                slot.append(t)
                continue
            swap = (k + j) % 2 == 1
            a, b = (t.stimuli[1], t.stimuli[0]) if swap else (t.stimuli[0], t.stimuli[1])
            if design is Design.AB:
                slot.append(Trial(item, (a, b)))
            else:
                x_is_first_condition = ((k // 2) + j) % 2 == 0
                x = t.stimuli[2] if x_is_first_condition else t.stimuli[3]
                slot.append(Trial(item, (a, b, x)))
        slots.append(tuple(slot))
    return tuple(slots)
