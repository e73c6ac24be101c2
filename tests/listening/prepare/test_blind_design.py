"""Blind stimuli and balanced designs: what a participant could learn from the files, ABX/AB balance within each
listener, --repeats, de-duplicated conditions, labels and the researcher options of `listen prepare`."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from evalkit.listening.model import (
    ANCHOR_LOW,
    ANCHOR_MID,
    OPEN_REFERENCE,
    REFERENCE,
    STATIC_DIR,
    STIMULI_DIR,
    STORE_FILE,
    Design,
    ListenError,
    load_definition,
)
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.prepare.stimulus_files import FIXED_MTIME_S, encode_flac, equal_size, padded_to
from evalkit.listening.storage import ListeningStore
from tests.listening.conftest import CONDITIONS, make_run


def _files(folder, definition, trial):
    ids = [*trial.stimuli] + ([trial.reference] if trial.reference else [])
    return [definition.stimulus_path(folder, s) for s in ids]


def _all_trials(definition):
    return [t for slot in definition.slots for t in slot] + [definition.training]


@pytest.mark.parametrize("design", [Design.MUSHRA, Design.ABX])
def test_files_of_a_trial_are_distinct_equal_sized_and_timeless(run_dir, tmp_path, design):
    folder = tmp_path / str(design)
    definition = prepare_test(run_dir, folder, PrepareOptions(design, items=2, listeners=2))
    assert definition.stimulus_format == "flac"
    for trial in _all_trials(definition):
        paths = _files(folder, definition, trial)
        data = [p.read_bytes() for p in paths]
        assert len({hashlib.sha256(d).hexdigest() for d in data}) == len(data)  # no two files byte-identical
        assert len({len(d) for d in data}) == 1  # one Content-Length
        assert {p.stat().st_mtime_ns for p in paths} == {FIXED_MTIME_S * 10**9}  # one Last-Modified, one ETag
        assert all(d[:4] == b"fLaC" for d in data)
    # ids are random per trial: no stimulus id appears in two trials (training included), across listeners
    seen = {}
    for slot in definition.slots:
        for t in slot:
            for sid in t.stimuli + ((t.reference,) if t.reference else ()):
                seen.setdefault(sid, set()).add((t.item, definition.pair_of(t) if design is Design.ABX else None))
    assert all(len(v) == 1 for v in seen.values())
    training_ids = set(definition.training.stimuli) | {definition.training.reference} - {None}
    assert not training_ids & {s for slot in definition.slots for t in slot for s in t.stimuli}
    assert all(len(sid) == 16 and int(sid, 16) >= 0 for sid in seen)  # 64 random bits, hex


def test_hidden_reference_is_the_reference_to_within_dither(mushra_dir):
    definition = load_definition(mushra_dir)
    trial = definition.slots[0][0]
    by_name = {definition.stimuli[s].condition: s for s in trial.stimuli}
    hidden, rate = sf.read(definition.stimulus_path(mushra_dir, by_name[REFERENCE]), dtype="int32")
    open_ref, _ = sf.read(definition.stimulus_path(mushra_dir, trial.reference), dtype="int32")
    assert definition.stimuli[trial.reference].condition == OPEN_REFERENCE
    diff = np.abs((hidden >> 8).astype(np.int64) - (open_ref >> 8))
    assert diff.max() <= 3 and np.mean(diff > 0) > 0.3  # 24-bit LSBs: independent TPDF dither, nothing more
    assert pyloudnorm.Meter(rate).integrated_loudness(hidden / 2**31) == pytest.approx(definition.target_lufs,
                                                                                       abs=0.05)


def test_flac_padding_keeps_the_audio_and_reaches_the_size():
    rng = np.random.default_rng(0)
    x = 0.2 * rng.standard_normal((2, 4000))
    a, b = encode_flac(x, 16000, rng), encode_flac(0.5 * x, 16000, rng)
    assert len(a) != len(b)
    pa, pb = equal_size([a, b])
    assert len(pa) == len(pb) == max(len(a), len(b)) + 4
    import io

    for original, padded in ((a, pa), (b, pb)):
        y0, _ = sf.read(io.BytesIO(original), dtype="int32")
        y1, _ = sf.read(io.BytesIO(padded), dtype="int32")  # libsndfile's decoder, not ours
        assert np.array_equal(y0, y1)
    assert np.max(np.abs(sf.read(io.BytesIO(pa))[0].T - x)) < 2.0 / 2**23
    with pytest.raises(ValueError, match="cannot pad"):
        padded_to(a, len(a) - 1)


def _balance(definition):
    """Per listener: (#trials, #X shown on A, #first condition of the pair on A)."""
    out = []
    for slot in definition.slots:
        x_on_a = first_on_a = 0
        for t in slot:
            cond = [definition.stimuli[s].condition for s in t.stimuli]
            first_on_a += cond[0] == definition.pair_of(t)[0]
            if len(cond) == 3:
                x_on_a += cond[2] == cond[0]
        out.append((len(slot), x_on_a, first_on_a))
    return out


def test_abx_balances_x_and_sides_within_each_listener_with_repeats(tmp_path):
    run = make_run(tmp_path / "r", n_items=3, specs=(*CONDITIONS, "lowpass?cutoff_hz=3000"))
    definition = prepare_test(run, tmp_path / "t", PrepareOptions(Design.ABX, items=3, listeners=6, repeats=2))
    assert definition.repeats == 2
    n = 3 * 3 * 2  # items x pairs x repeats
    for count, x_on_a, first_on_a in _balance(definition):
        assert count == n
        assert x_on_a == n // 2  # always answering "A" scores exactly 50 %
        assert first_on_a == n // 2
    # each (item, pair) is shown twice to every listener, each time under new ids
    slot = definition.slots[0]
    per_pair = Counter((t.item, definition.pair_of(t)) for t in slot)
    assert set(per_pair.values()) == {2}
    assert len({s for t in slot for s in t.stimuli}) == 3 * n
    odd = prepare_test(run, tmp_path / "odd", PrepareOptions(Design.ABX, items=1, listeners=2,
                                                             conditions=CONDITIONS))
    assert sorted(x for _, x, _ in _balance(odd)) == [0, 1]  # one trial: X = A for one listener of two


def test_ab_sides_balanced_within_listener(tmp_path, run_dir):
    definition = prepare_test(run_dir, tmp_path / "ab", PrepareOptions(Design.AB, items=3, listeners=3))
    for count, _, first_on_a in _balance(definition):
        assert abs(first_on_a - count / 2) <= 0.5
    assert definition.labels == {"reference": "Reference", "anchor35": "3.5 kHz anchor", "anchor70": "7 kHz anchor",
                                 "lowpass?cutoff_hz=2000": "2 kHz low-pass", "lowpass?cutoff_hz=5000": "5 kHz low-pass"}


def test_anchor_named_in_conditions_is_the_anchor_once(tmp_path):
    run = make_run(tmp_path / "r", n_items=1, specs=("lowpass?cutoff_hz=3500", "lowpass?cutoff_hz=5000"))
    definition = prepare_test(run, tmp_path / "t", PrepareOptions(
        Design.MUSHRA, conditions=("lowpass?cutoff_hz=3500", "lowpass?cutoff_hz=5000", "lowpass?cutoff_hz=5000.0"),
        listeners=1))
    names = Counter(definition.stimuli[s].condition for s in definition.slots[0][0].stimuli)
    assert names == Counter({REFERENCE: 1, ANCHOR_LOW: 1, ANCHOR_MID: 1, "lowpass?cutoff_hz=5000": 1})
    assert definition.labels == {"reference": "Reference", "anchor35": "3.5 kHz anchor", "anchor70": "7 kHz anchor",
                                 "lowpass?cutoff_hz=5000": "5 kHz low-pass"}


def test_labels_options_and_texts_land_in_test_json(run_dir, tmp_path):
    out = tmp_path / "t"
    prepare_test(run_dir, out, PrepareOptions(
        Design.MUSHRA, items=1, listeners=1, labels=(("lowpass?cutoff_hz=2000.0", "Two"), ("anchor70", "Mid")),
        instructions="# Hello\nListen well.", consent="I agree.", require_training=True, excerpt_s=5.0))
    raw = json.loads((out / "test.json").read_text())
    assert raw["labels"] == {"reference": "Reference", "anchor35": "3.5 kHz anchor", "anchor70": "Mid",
                             "lowpass?cutoff_hz=2000": "Two", "lowpass?cutoff_hz=5000": "5 kHz low-pass"}
    assert raw["instructions"] == "# Hello\nListen well." and raw["consent"] == "I agree."
    assert raw["require_training"] is True and raw["stimulus_format"] == "flac"
    with pytest.raises(ListenError, match=r"--label opus\?bitrate_kbps=6=O: opus\?bitrate_kbps=6 is not a condition"):
        prepare_test(run_dir, tmp_path / "x", PrepareOptions(Design.MUSHRA, labels=(("opus?bitrate_kbps=6", "O"),)))


def test_old_definitions_wav_in_static_without_labels_still_load(mushra_dir, fresh_copy):
    from evalkit.listening.web.session import deliver, presented

    folder = fresh_copy(mushra_dir)
    raw = json.loads((folder / "test.json").read_text())
    for key in ("labels", "stimulus_format", "headphone", "repeats", "instructions", "consent", "require_training",
                "stimuli_dir", "trial_instructions"):
        raw.pop(key, None)
    (folder / "test.json").write_text(json.dumps(raw))
    for path in (folder / STIMULI_DIR).glob("*.flac"):  # an old test folder: WAV files in static/
        path.rename(folder / STATIC_DIR / path.with_suffix(".wav").name)
    definition = load_definition(folder)
    assert definition.stimulus_format == "wav" and definition.labels["anchor35"] == "3.5 kHz anchor"
    assert definition.stimuli_dir == STATIC_DIR
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
    trial = definition.slots[p.slot][0]
    path = deliver(folder, definition, p, "trial-0", trial, p.orders[0]).result()
    x, _ = sf.read(path, dtype="int32")
    first = presented(trial, p.orders[0])[0]
    y, _ = sf.read(definition.stimulus_path(folder, first), dtype="int32", always_2d=True)
    assert np.array_equal(x[:, :y.shape[1]], y)  # the bundle's first channels: the open reference, bit for bit


def test_excerpt_seconds_and_loudness_clipping_note(tmp_path):
    run = make_run(tmp_path / "r", n_items=1, specs=CONDITIONS, seconds=8.0)
    d = prepare_test(run, tmp_path / "a", PrepareOptions(Design.MUSHRA, listeners=1, excerpt_s=3.0))
    (stim, *_) = d.stimuli.values()
    assert 0.8 * 3.0 <= stim.samples / stim.sample_rate <= 1.2 * 3.0
    loud = prepare_test(run, tmp_path / "b", PrepareOptions(Design.MUSHRA, listeners=1, target_lufs=-6.0))
    assert loud.target_lufs < -6.0
    (note,) = [n for n in loud.notes if n.startswith("loudness")]
    assert f"{loud.target_lufs} LUFS used instead of -6.0 LUFS" in note and "would peak at" in note
    assert "(limit 0.98)" in note


@pytest.mark.parametrize(("options", "message"), [
    (PrepareOptions(Design.MUSHRA, repeats=2), "--repeats: only for the ab and abx designs"),
    (PrepareOptions(Design.AB, repeats=0), "--repeats: expected an integer >= 1, got 0"),
    (PrepareOptions(Design.MUSHRA, excerpt_s=0.2), "--excerpt-seconds: expected a number of seconds >= 1"),
    (PrepareOptions(Design.MUSHRA, target_lufs=3.0), "--loudness-lufs: expected a level in -70..-5 LUFS"),
])
def test_bad_prepare_options(run_dir, tmp_path, options, message):
    with pytest.raises(ListenError, match=message):
        prepare_test(run_dir, tmp_path / "x", options)
    assert not (tmp_path / "x").exists()


def test_headphone_check_is_drawn_per_participant_and_stays_on_the_server(run_dir, tmp_path):
    from evalkit.listening.prepare import headphone as hp
    from evalkit.listening.web.session import headphone_bundle, headphone_data, headphone_seed

    out = tmp_path / "hp"
    d = prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=1, listeners=1, headphone_check=True))
    assert d.headphone == hp.HeadphoneCheck(hp.HUGGINS_METHOD, 5, 6) and load_definition(out).headphone == d.headphone
    assert not list((out / STATIC_DIR).iterdir())  # no shared files: nothing of the check is written at prepare
    with ListeningStore(out / STORE_FILE) as store:
        people = [store.create_participant(d) for _ in range(8)]
    answers = [hp.answers_for(headphone_seed(p)) for p in people]
    assert all(sorted(a) == [1, 1, 2, 2, 3, 3] for a in answers)  # balanced for everyone
    assert len({tuple(a) for a in answers}) > 1  # 90 possible sequences: 8 equal ones would be a shared draw
    bundles = [headphone_bundle(p, 6) for p in people[:2]]
    assert len(bundles[0]) == len(bundles[1]) and bundles[0] != bundles[1]  # same size, other noise
    assert headphone_bundle(people[0], 6) == bundles[0]  # drawn once per participant: a reload gets the same
    data = json.dumps(headphone_data(d, people[0]))
    assert "answer" not in data and str(answers[0]) not in data
    # the right burst holds the Huggins pitch: the channels differ in that burst only (from the bundle's samples)
    x, rate = sf.read(io.BytesIO(bundles[0]), dtype="float64")
    burst, gap = int(hp.BURST_S * rate), int(hp.GAP_S * rate)
    for k, answer in enumerate(answers[0], start=1):
        left, right = x[:, 2 * k], x[:, 2 * k + 1]
        differs = [not np.allclose(left[j * (burst + gap):j * (burst + gap) + burst],
                                   right[j * (burst + gap):j * (burst + gap) + burst], atol=1e-3) for j in range(3)]
        assert differs == [j + 1 == answer for j in range(3)]


def test_headphone_sequences_of_two_seeds():
    from evalkit.listening.prepare import headphone as hp

    a, sa = hp.sequence(11)
    b, sb = hp.sequence(12)
    assert a == hp.answers_for(11) and b == hp.answers_for(12) and a != b
    assert all(x.shape == (2, 176400) for x in sa + sb) and not np.allclose(sa[1], sb[1])
