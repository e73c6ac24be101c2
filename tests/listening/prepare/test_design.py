"""`listen prepare`: stimuli, loudness, anchors against the BS.1534-3 mask, balanced orders, bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from scipy import signal

from evalkit.listening.model import (
    ANCHOR_LOW,
    ANCHOR_MID,
    OPEN_REFERENCE,
    REFERENCE,
    STIMULI_DIR,
    Design,
    ListenError,
    load_definition,
)
from evalkit.listening.prepare.design import PrepareOptions, ab_pairs, prepare_test, select_conditions
from evalkit.listening.prepare.runsource import RunContents, RunUnit, read_run
from evalkit.listening.prepare.stimuli import choose_excerpt, williams_square
from tests.listening.conftest import make_run


def _read(folder: Path, sid: str) -> tuple[np.ndarray, int]:
    x, rate = sf.read(folder / STIMULI_DIR / f"{sid}.flac", dtype="float64", always_2d=True)
    return x.T, rate


def test_mushra_trials_are_consistent_and_loudness_matched(mushra_dir, run_dir):
    definition = load_definition(mushra_dir)
    assert definition.design is Design.MUSHRA and len(definition.items) == 2
    run = read_run(run_dir)
    for trial in definition.slots[0]:
        names = [definition.stimuli[s].condition for s in trial.stimuli]
        assert sorted(names) == sorted([REFERENCE, ANCHOR_LOW, ANCHOR_MID, *[c for c in definition.conditions
                                                                            if not c.startswith("anchor")]])
        assert len(trial.stimuli) <= 12
        assert definition.stimuli[trial.reference].condition == OPEN_REFERENCE
        signals = {}
        for sid in (*trial.stimuli, trial.reference):
            x, rate = _read(mushra_dir, sid)
            signals[definition.stimuli[sid].condition] = x
            loud = pyloudnorm.Meter(rate).integrated_loudness(x.T)
            assert loud == pytest.approx(definition.target_lufs, abs=0.05)
        assert len({x.shape for x in signals.values()}) == 1
        # the hidden and the open reference are the item itself (1 s: kept whole, faded, scaled)
        original, _ = sf.read(next(u.item_path for u in run.units if u.item_id == trial.item), always_2d=True)
        ref = signals[REFERENCE][0]
        assert np.allclose(signals[OPEN_REFERENCE], signals[REFERENCE], atol=1e-6)
        middle = slice(1000, len(ref) - 1000)  # past the 20 ms fades
        gain = np.dot(ref[middle], original[middle, 0]) / np.dot(original[middle, 0], original[middle, 0])
        assert np.max(np.abs(ref[middle] - gain * original[middle, 0])) < 1e-5


def _attenuation_db(reference: np.ndarray, anchor: np.ndarray, rate: int, freqs: np.ndarray) -> np.ndarray:
    f, pxy = signal.csd(reference, anchor, fs=rate, nperseg=4096)
    _, pxx = signal.welch(reference, fs=rate, nperseg=4096)
    h = np.abs(pxy / pxx)
    h /= np.median(h[(f > 200) & (f < 2000)])  # loudness matching changed the gain: normalise the passband
    return -20 * np.log10(np.interp(freqs, f, h))


def test_built_anchors_meet_the_bs1534_mask(tmp_path):
    """Anchors built from the reference (the run has none) on white noise at 44.1 kHz, measured with scipy:
    flat pass band, ≥ 25 dB at 8/7·fc and ≥ 50 dB from 9/7·fc (the BS.1534-3 3.5 kHz mask, scaled for 7 kHz)."""
    run = make_run(tmp_path, n_items=1, specs=("lowpass?cutoff_hz=10000",), rate=44100, noise=True)
    out = tmp_path / "t"
    definition = prepare_test(run, out, PrepareOptions(Design.MUSHRA, listeners=1))
    trial = definition.slots[0][0]
    by_name = {definition.stimuli[s].condition: s for s in trial.stimuli}
    ref, rate = _read(out, by_name[REFERENCE])
    for name, fc in ((ANCHOR_LOW, 3500.0), (ANCHOR_MID, 7000.0)):
        anchor, _ = _read(out, by_name[name])
        passband = _attenuation_db(ref[0], anchor[0], rate, np.linspace(100, 0.95 * fc, 50))
        assert np.max(np.abs(passband)) < 0.3
        assert _attenuation_db(ref[0], anchor[0], rate, np.array([8 / 7 * fc]))[0] >= 25
        stop = _attenuation_db(ref[0], anchor[0], rate, np.linspace(9 / 7 * fc, min(2.5 * fc, 20000), 40))
        assert np.min(stop) >= 50


def test_balanced_orders_and_ab_sides(mushra_dir, ab_dir, run_dir, tmp_path):
    assert williams_square(3) == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    for n in (2, 4, 6):  # every ordered succession once in an even Williams square
        square = williams_square(n)
        successions = Counter((row[k], row[k + 1]) for row in square for k in range(n - 1))
        assert len(successions) == n * (n - 1) and set(successions.values()) == {1}
        assert all(sorted(col) == list(range(n)) for col in zip(*square, strict=True))
    definition = load_definition(mushra_dir)
    positions = Counter((slot.index(t), t.item) for slot in definition.slots for t in slot)
    assert set(positions.values()) == {len(definition.slots) // len(definition.items)}
    ab = load_definition(ab_dir)
    a_first = Counter()
    for slot in ab.slots:
        for t in slot:
            pair = ab.pair_of(t)
            a_first[(t.item, pair)] += ab.stimuli[t.stimuli[0]].condition == pair[0]
    assert set(a_first.values()) == {len(ab.slots) // 2}  # each side order for half of the listeners
    out = tmp_path / "abx"
    abx = prepare_test(run_dir, out, PrepareOptions(Design.ABX, items=1, listeners=4))
    combos = Counter()
    for slot in abx.slots:
        (t,) = slot
        a, _, x = (abx.stimuli[s].condition for s in t.stimuli)
        combos[(a == abx.pairs[0][0], x == a)] += 1
        assert len(set(t.stimuli)) == 3  # X has an id of its own
    assert set(combos.values()) == {1} and len(combos) == 4


def test_ab_pairs_klt_against_base():
    conditions = ["encodec-24khz?bandwidth=6", "klt?bandwidth=6&base=encodec-24khz&dim=72", "dac-44khz?n_codebooks=9"]
    assert ab_pairs(conditions) == [("klt?bandwidth=6&base=encodec-24khz&dim=72", "encodec-24khz?bandwidth=6")]
    assert ab_pairs(["x?a=1", "y?a=1", "z?a=1"]) == [("x?a=1", "y?a=1"), ("x?a=1", "z?a=1"), ("y?a=1", "z?a=1")]


def test_choose_excerpt_cuts_at_quiet_points():
    rate = 1000
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 30 * rate)).astype(np.float32)
    x[:, 1200:1300] = 0  # quiet at 1.2 s (inside the 2 s start window)
    x[:, 11500:11600] = 0  # quiet at 11.5 s (inside 1.2 + [8, 12] s)
    start, end = choose_excerpt(x, rate)
    assert 1200 <= start < 1300 and 11500 <= end <= 11600
    assert 8 * rate <= end - start <= 12 * rate
    assert choose_excerpt(x[:, : 12 * rate], rate) == (0, 12 * rate)  # short items stay whole


def test_bad_runs_and_definitions(run_dir, mushra_dir, fresh_copy, tmp_path):
    with pytest.raises(ListenError, match="no run store"):
        prepare_test(tmp_path, tmp_path / "x", PrepareOptions(Design.MUSHRA))
    with pytest.raises(ListenError, match=r"--conditions: nope\?a=1 has no decoded audio .*available: lowpass"):
        prepare_test(run_dir, tmp_path / "x", PrepareOptions(Design.MUSHRA, conditions=("nope?a=1",)))
    with pytest.raises(ListenError, match="already holds a test"):
        prepare_test(run_dir, mushra_dir, PrepareOptions(Design.MUSHRA))
    with pytest.raises(ListenError, match="--listeners"):
        prepare_test(run_dir, tmp_path / "x", PrepareOptions(Design.MUSHRA, listeners=0))
    assert not (tmp_path / "x").exists()
    # a definition whose stimuli are missing or mismatched is refused with one line
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    victim = definition.slots[0][0].stimuli[1]
    (folder / STIMULI_DIR / f"{victim}.flac").unlink()
    with pytest.raises(ListenError, match=f"missing stimulus file stimuli/{victim}.flac"):
        load_definition(folder)
    folder = fresh_copy(mushra_dir)
    raw = json.loads((folder / "test.json").read_text())
    raw["stimuli"][victim]["samples"] += 1
    (folder / "test.json").write_text(json.dumps(raw))
    with pytest.raises(ListenError, match=r"stimuli differ in \(rate, channels, samples\)"):
        load_definition(folder)
    raw["slots"][0][0]["stimuli"].append("not-an-id")
    (folder / "test.json").write_text(json.dumps(raw))
    with pytest.raises(ListenError, match="unknown stimulus id not-an-id"):
        load_definition(folder)
    (folder / "test.json").write_text("{")
    with pytest.raises(ListenError, match="malformed test definition"):
        load_definition(folder)


def test_decoded_audio_of_another_length_is_refused(tmp_path):
    run = make_run(tmp_path, n_items=1, specs=("lowpass?cutoff_hz=5000",))
    (unit,) = read_run(run).units
    x, rate = sf.read(unit.decoded_path)
    sf.write(unit.decoded_path, x[:-10], rate, subtype="FLOAT")
    with pytest.raises(ListenError, match=f"{unit.decoded_path}: item clip0.wav: shape .* differs from the reference"):
        prepare_test(run, tmp_path / "t", PrepareOptions(Design.MUSHRA))
    assert not (tmp_path / "t" / "test.json").exists()
    assert not (tmp_path / "t" / STIMULI_DIR).exists()


def test_condition_limits():
    units = tuple(RunUnit("i", Path("ref.wav"), "", f"c{k}?a=1", Path(f"{k}.wav")) for k in range(10))
    run = RunContents(Path("run"), units, {"skipped?a=1": "skipped: no weights"})
    with pytest.raises(ListenError, match="10 conditions \\+ hidden reference \\+ 2 anchors exceed 12"):
        select_conditions(run, Design.MUSHRA, ())
    assert len(select_conditions(run, Design.MUSHRA, tuple(f"c{k}?a=1" for k in range(9)))) == 9
    with pytest.raises(ListenError, match="needs at least two conditions"):
        select_conditions(run, Design.AB, ("c0?a=1",))
    empty = RunContents(Path("run"), (), {"encodec-24khz?bandwidth=6": "skipped: weights missing"})
    with pytest.raises(ListenError, match=r"no codec variant .*\(unavailable: encodec-24khz.*weights missing"):
        select_conditions(empty, Design.MUSHRA, ())


def test_a_mono_policy_run_of_stereo_items_gives_mono_stimuli_whose_reference_is_the_mix(tmp_path):
    from evalkit.runner import load_config, run_evaluation

    rate, t = 16000, np.arange(16000) / 16000
    data = tmp_path / "data"
    data.mkdir()
    for k in range(2):
        left, right = 0.3 * np.sin(2 * np.pi * 300 * (k + 1) * t), 0.2 * np.sin(2 * np.pi * 700 * t)
        sf.write(data / f"st{k}.wav", np.stack([left, right], axis=1).astype(np.float32), rate)
    config = tmp_path / "run.yaml"
    config.write_text(f'dataset: {{folder: {data}, glob: "*.wav"}}\ncodecs:\n  - spec: "lowpass?cutoff_hz=3500"\n'
                      f'  - spec: "opus?bitrate_kbps=12"\nmetrics: [si_sdr]\noutput: {tmp_path / "run"}\n'
                      "workers: 0\nchannel_policy: mono\n")
    run_evaluation(*load_config(config), progress=False)
    out = tmp_path / "ab"
    definition = prepare_test(tmp_path / "run", out, PrepareOptions(Design.MUSHRA, items=2, listeners=2))
    assert {s.channels for s in definition.stimuli.values()} == {1}
    trial = definition.slots[0][0]
    ref, _ = _read(out, trial.reference)
    original, _ = sf.read(data / trial.item, always_2d=True)
    mix = original.mean(axis=1)
    middle = slice(1000, ref.shape[1] - 1000)  # past the fades
    gain = np.dot(ref[0, middle], mix[middle]) / np.dot(mix[middle], mix[middle])
    assert np.max(np.abs(ref[0, middle] - gain * mix[middle])) < 1e-5
