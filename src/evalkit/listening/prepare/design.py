"""``evalkit listen prepare``: from an evaluation run to a test folder (stimuli + ``test.json``).

Items and conditions come from the run's decoded cache (:mod:`evalkit.listening.prepare.runsource`). Every item is cut
to one excerpt (same samples for all conditions, short fades), the hidden reference and the BS.1534-3 anchors
are added (taken from the run when it has them, else built from the reference with the same filter), every
stimulus is loudness-matched (BS.1770) to one target, and written as dithered 24-bit FLAC under a random id, one file
per trial and signal (ACR, DCR and BS.1116 have no anchors; their hidden reference is a condition of its own, as in
P.808 and BS.1116), into ``stimuli/``, which is never served (:mod:`evalkit.listening.prepare.stimulus_files`);
``static/``, the served folder, starts empty: ``listen serve`` puts the per-participant trial bundles there.
"""

from __future__ import annotations

import itertools
import math
import shutil
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evalkit.listening.model import (
    ANCHOR_LOW,
    ANCHOR_MID,
    ANCHOR_SPECS,
    DEFINITION_FILE,
    MAX_SIGNALS_PER_TRIAL,
    REFERENCE,
    STATIC_DIR,
    STIMULI_DIR,
    Design,
    ListenError,
    Stimulus,
    TestDefinition,
    validate_definition,
)
from evalkit.listening.prepare.assign import assign, make_trials, training_trial
from evalkit.listening.prepare.headphone import HUGGINS_METHOD, N_TRIALS, PASS_CORRECT, HeadphoneCheck
from evalkit.listening.prepare.runsource import RunContents, RunUnit, read_run
from evalkit.listening.prepare.stimuli import apply_fades, choose_excerpt, limiting_stimulus, loudness_gains_db
from evalkit.listening.prepare.stimulus_files import StimulusWriter
from evalkit.listening.questionnaire import Question

if TYPE_CHECKING:
    from evalkit.runner.reader import VariantRecord

MAX_PEAK = 0.98  # loudness matching never lets a stimulus peak above this (linear full scale)


@dataclass(frozen=True)
class PrepareOptions:
    design: Design
    items: int | None = None  # None: every item that has all conditions
    conditions: tuple[str, ...] = ()  # codec specs of the run; empty: all of its variants
    listeners: int = 12
    seed: int = 0
    excerpt_s: float = 10.0  # target excerpt length; items up to 1.2 times this are kept whole
    target_lufs: float = -23.0
    repeats: int = 1  # AB/ABX: presentations of each (item, pair) per listener
    labels: tuple[tuple[str, str], ...] = ()  # (spec or condition name, display label) overrides
    instructions: str = ""  # Markdown for the welcome page (empty: the design's default)
    trial_instructions: tuple[tuple[str, str], ...] = ()  # (item or "*" for every trial, Markdown above the trial)
    consent: str = ""  # Markdown consent text (empty: the default sentence)
    require_training: bool = False
    headphone_check: bool = False
    stimulus_format: str = "flac"  # "wav": the former 24-bit WAV files (kept for before/after comparisons)
    questionnaire: tuple[Question, ...] = ()  # the researcher's finish-page questions (after the standard ones)

    @property
    def max_excerpt_s(self) -> float:
        return 1.2 * self.excerpt_s


def _canonical(spec: str) -> str:
    from evalkit.runner.reader import canonical

    return canonical(spec)


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
    if design is Design.MUSHRA:  # an anchor named in --conditions is the anchor: shown once, as anchor35/70
        chosen = [s for s in chosen if _canonical(s) not in anchors]
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        skipped = "; ".join(f"{s}: {r}" for s, r in sorted(run.unavailable.items()))
        raise ListenError(f"{run.run_dir}: no codec variant with decoded audio besides the anchors"
                          + (f" (unavailable: {skipped})" if skipped else ""))
    if design is Design.MUSHRA and len(chosen) + 3 > MAX_SIGNALS_PER_TRIAL:
        raise ListenError(f"--conditions: {len(chosen)} conditions + hidden reference + 2 anchors exceed "
                          f"{MAX_SIGNALS_PER_TRIAL} signals per trial (BS.1534-3); choose at most "
                          f"{MAX_SIGNALS_PER_TRIAL - 3} of: {', '.join(chosen)}")
    if design in (Design.AB, Design.ABX) and len(chosen) < 2:
        raise ListenError(f"--conditions: {design} needs at least two conditions to pair, got {chosen}")
    return chosen


def ab_pairs(conditions: list[str]) -> list[tuple[str, str]]:
    """Pairs for AB/ABX: each KLT variant against its base when both are chosen, otherwise every pair."""
    from evalkit.runner.reader import describe_spec

    klt = []
    for spec in conditions:
        base = describe_spec(spec).base  # a KLT variant's base codec
        if base is None:
            continue
        for other in conditions:
            if other != spec and _canonical(other) == _canonical(base.codec_spec):
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


def _check_options(options: PrepareOptions) -> None:
    if options.listeners < 1:
        raise ListenError(f"--listeners: expected an integer >= 1, got {options.listeners}")
    if options.items is not None and options.items < 1:
        raise ListenError(f"--items: expected an integer >= 1, got {options.items}")
    if options.repeats < 1:
        raise ListenError(f"--repeats: expected an integer >= 1, got {options.repeats}")
    if options.repeats > 1 and options.design not in (Design.AB, Design.ABX):
        raise ListenError("--repeats: only for the ab and abx designs")
    if not (math.isfinite(options.excerpt_s) and options.excerpt_s >= 1.0):
        raise ListenError(f"--excerpt-seconds: expected a number of seconds >= 1, got {options.excerpt_s}")
    if not (math.isfinite(options.target_lufs) and -70.0 <= options.target_lufs <= -5.0):
        raise ListenError(f"--loudness-lufs: expected a level in -70..-5 LUFS, got {options.target_lufs}")
    if options.stimulus_format not in ("flac", "wav"):
        raise ListenError(f"stimulus format: expected flac or wav, got {options.stimulus_format!r}")


def test_labels(design: Design, conditions: list[str], overrides: tuple[tuple[str, str], ...],
                per_channel: Collection[str] = (),
                records: Mapping[str, VariantRecord] | None = None) -> dict[str, str]:
    """``labels`` of test.json: condition name as stored in ratings → display label (``--label`` first, then
    :func:`evalkit.codecs.labels.labels_for`), for the conditions and the fixed names ``reference``, ``anchor35`` and
    ``anchor70`` (whatever the design). In MUSHRA an override may name an anchor by its spec
    (``lowpass?cutoff_hz=3500``). ``per_channel``: conditions whose codec coded the test's items channel by
    channel (labelled ``8 kbps/ch``); ``records``: the run's variant records (a plugin codec's display name).

    Raises:
        ListenError: an override that names no condition of the test.
    """
    from evalkit.runner.reader import labels_for

    names = list(dict.fromkeys([REFERENCE, ANCHOR_LOW, ANCHOR_MID, *conditions]))  # fixed names always
    by_canonical = {_canonical(n): n for n in names} | (
        {_canonical(s): n for n, s in ANCHOR_SPECS.items()} if design is Design.MUSHRA else {})
    resolved = {}
    for spec, label in overrides:
        name = spec if spec in names else by_canonical.get(_canonical(spec))
        if name is None:
            raise ListenError(f"--label {spec}={label}: {spec} is not a condition of this test; "
                              f"conditions: {', '.join(names)}")
        resolved[name] = label
    return labels_for(names, resolved, per_channel, records)


def _run_records(run_dir: str | Path, specs: list[str]) -> dict[str, VariantRecord]:
    """The run's records of ``specs`` (stored, else described; empty for a folder the reader cannot read)."""
    from evalkit.runner.reader import RunReader, RunReadError

    try:
        return RunReader(run_dir).records(specs)
    except RunReadError:
        return {}


def prepare_test(run_dir: str | Path, out_dir: str | Path, options: PrepareOptions) -> TestDefinition:
    """Build a test folder: ``static/<id>.flac`` stimuli and ``test.json``.

    Raises:
        ListenError: bad options, run folder, conditions, labels or items; stimuli of one trial with different
            rate, length or channels; an existing test folder.
    """
    from evalkit import audio as audio_lib
    from evalkit.runner.transcode import anchor_from_reference

    out_dir = Path(out_dir)
    if any((out_dir / name).exists() for name in (DEFINITION_FILE, STIMULI_DIR, STATIC_DIR)):
        raise ListenError(f"{out_dir}: already holds a test ({DEFINITION_FILE}, {STIMULI_DIR}/ or {STATIC_DIR}/); "
                          "choose another --out")
    _check_options(options)
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
    per_channel = {c for c in conditions if any(complete[item][c].per_channel for item in items)}
    labels = test_labels(options.design, conditions, options.labels, per_channel, _run_records(run_dir, conditions))
    trial_instructions = _trial_instructions(options.trial_instructions, set(units_by_item), items)

    signals: dict[tuple[str, str], np.ndarray] = {}
    rates: dict[str, int] = {}
    notes: list[str] = []
    for item in items:
        units = complete[item]
        any_unit = units[conditions[0]]
        ref = audio_lib.load(any_unit.item_path)
        # channel_policy: mono (the run's metrics compare mono mixes): the reference is the item's mix
        reference = audio_lib.apply_channel_policy(ref.samples, run.channel_policy)
        start, end = choose_excerpt(reference, ref.sample_rate, options.excerpt_s, options.max_excerpt_s)
        rates[item] = ref.sample_rate
        named = {REFERENCE: reference}
        for spec in conditions:
            named[spec] = audio_lib.load(units[spec].decoded_path, allow_silent=True).samples
        if options.design is Design.MUSHRA:
            run_anchors = {anchor_spec_of[_canonical(s)]: u for s, u in units.items()
                           if _canonical(s) in anchor_spec_of}
            for name, spec in ANCHOR_SPECS.items():
                if name in run_anchors:
                    named[name] = audio_lib.load(run_anchors[name].decoded_path, allow_silent=True).samples
                else:
                    named[name] = anchor_from_reference(reference, spec, ref.sample_rate)
        for name, x in named.items():
            x = audio_lib.apply_channel_policy(x, run.channel_policy)  # mono run: every stimulus is heard as a mix
            if x.shape != reference.shape:
                where = units[name].decoded_path if name in units else name
                raise ListenError(f"{where}: item {item}: shape {x.shape} (channels, samples) differs from the "
                                  f"reference's {reference.shape}; stimuli of a trial must match")
            signals[(item, name)] = apply_fades(x[:, start:end], ref.sample_rate)
        if end - start < reference.shape[-1]:
            notes.append(f"{item}: excerpt {start / ref.sample_rate:.2f}-{end / ref.sample_rate:.2f} s")

    keys = {str(k): k for k in signals}
    loud = {str(k): audio_lib.loudness_lufs(x, rates[k[0]]) for k, x in signals.items()}
    peaks = {str(k): float(np.max(np.abs(x))) for k, x in signals.items()}
    gains, target = loudness_gains_db(loud, peaks, options.target_lufs, MAX_PEAK)
    if target != options.target_lufs:
        key, peak = limiting_stimulus(loud, peaks, options.target_lufs)
        item, name = keys[key]
        notes.append(f"loudness: {target} LUFS used instead of {options.target_lufs} LUFS: at {options.target_lufs} "
                     f"LUFS item {item} / {labels.get(name, name)} would peak at {peak:.2f} of full scale (limit "
                     f"{MAX_PEAK}); all stimuli are lowered alike so they stay equally loud")
    for k, v in loud.items():
        if not math.isfinite(v):
            notes.append(f"{keys[k][0]} / {keys[k][1]}: below the BS.1770 gate, left unscaled")

    writer = StimulusWriter(out_dir / STIMULI_DIR, options.stimulus_format)
    stimuli: dict[str, Stimulus] = {}

    def write(item: str, name: str, stored: str | None = None) -> str:
        x = signals[(item, name)] * np.float32(10 ** (gains[str((item, name))] / 20))
        sid = writer.add(item, x, rates[item])
        stimuli[sid] = Stimulus(sid, item, stored or name, rates[item], x.shape[0], x.shape[1])
        return sid

    try:
        pairs = ab_pairs(conditions) if options.design in (Design.AB, Design.ABX) else []
        trials_by_item = make_trials(options.design, items, conditions, pairs, options.repeats, write)
        training = training_trial(options.design, items[0], conditions, pairs, write)
        slots = assign(options.design, items, trials_by_item, options.listeners, rng)
        headphone = HeadphoneCheck(HUGGINS_METHOD, PASS_CORRECT, N_TRIALS) if options.headphone_check else None
        writer.flush()
        (out_dir / STATIC_DIR).mkdir()
        anchors = ({ANCHOR_LOW: ANCHOR_SPECS[ANCHOR_LOW], ANCHOR_MID: ANCHOR_SPECS[ANCHOR_MID]}
                   if options.design is Design.MUSHRA else {})
        definition = TestDefinition(
            design=options.design, seed=options.seed, run_dir=str(run.run_dir), items=tuple(items),
            conditions={c: c for c in conditions} | anchors, stimuli=stimuli, slots=slots, training=training,
            target_lufs=target, notes=tuple(notes), pairs=tuple(pairs), labels=labels,
            stimulus_format=options.stimulus_format, repeats=options.repeats,
            require_training=options.require_training, instructions=options.instructions, consent=options.consent,
            headphone=headphone, stimuli_dir=STIMULI_DIR, trial_instructions=trial_instructions,
            questionnaire=options.questionnaire)
        problems = validate_definition(definition, out_dir)
        if problems:
            raise ListenError(f"{out_dir}: {problems[0]}")
        definition.save(out_dir)
    except BaseException:
        shutil.rmtree(out_dir / STIMULI_DIR, ignore_errors=True)
        shutil.rmtree(out_dir / STATIC_DIR, ignore_errors=True)
        raise
    return definition


def _trial_instructions(given: tuple[tuple[str, str], ...], run_items: set[str], items: list[str]) -> dict[str, str]:
    """``trial_instructions`` of test.json: the entries for ``"*"`` and for the chosen items.

    Raises:
        ListenError: an entry for an item the run does not have.
    """
    out = {}
    for item, text in given:
        if item != "*" and item not in run_items:
            raise ListenError(f"--trial-instructions: {item!r} is not an item of the run (use '*' for every trial)")
        if item == "*" or item in items:
            out[item] = text
    return out
