"""Decoded folders: files decoded by another tool, scored like codec outputs; keyed by their content."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from evalkit import audio
from evalkit.cli import main
from evalkit.codecs import build_codec
from evalkit.runner import ConfigError, validate_config
from tests.runner.conftest import export_values, run_raw

METRICS = ["si_sdr", "mel_distance", "stoi"]


@pytest.fixture
def items(tmp_path, rng):
    """Two 0.5 s mono items at 16 kHz (one in a subfolder) and their 3.5 kHz low-passed decodings as FLAC."""
    data, decoded = tmp_path / "data", tmp_path / "decoded"
    (data / "sub").mkdir(parents=True)
    (decoded / "sub").mkdir(parents=True)
    t = np.arange(8000) / 16000
    for i, rel in enumerate(["item0.wav", "sub/item1.wav"]):
        x = (0.3 * np.sin(2 * np.pi * (220 + 330 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t))
             + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        sf.write(data / rel, x, 16000, subtype="FLOAT")
        y = build_codec("lowpass?cutoff_hz=3500").reconstruct(x[None], 16000).audio
        sf.write((decoded / rel).with_suffix(".flac"), y.T, 16000, subtype="PCM_24")
    return data, decoded


def _config(data, output, decoded_entry, **extra):
    return {"dataset": {"folder": str(data), "glob": "**/*.wav"}, "codecs": [{"decoded": decoded_entry}],
            "metrics": METRICS, "output": str(output), "workers": 0, **extra}


def _units(report):
    import sqlite3

    with sqlite3.connect(report.store) as db:
        db.row_factory = sqlite3.Row
        return {r["item_id"]: dict(r) for r in db.execute("SELECT * FROM units WHERE codec_spec LIKE 'decoded%'")}


@pytest.mark.slow  # runs over decoded folders with resampling and metric references
def test_a_decoded_folder_run_equals_evalkit_score_per_file(items, tmp_path, capsys):
    data, decoded = items
    entry = {"folder": str(decoded), "label": "mine 6 kbps", "bitrate_kbps": 6.0}
    report = run_raw(_config(data, tmp_path / "out", entry), tmp_path)
    rows = export_values(report)
    assert len(rows) == 6 and all(r[4] is None for r in rows), rows
    for rel in ["item0.wav", "sub/item1.wav"]:
        args = ["score", str(data / rel), str((decoded / rel).with_suffix(".flac")), "--json"]
        assert main([*args, *[a for m in METRICS for a in ("--metric", m)]]) == 0
        expected = json.loads(capsys.readouterr().out)
        got = {r[2]: r[3] for r in rows if r[0] == rel}
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-7)
    import evalkit

    run = evalkit.load_run(tmp_path / "out")
    assert set(run.summary["label"]) == {"mine 6 kbps"} and set(run.summary["weights"]) == {"decoded folder"}
    assert set(run.summary["bitrate_kbps"]) == {6.0}
    assert set(run.rate_quality["family"]) == {"decoded:mine 6 kbps"}
    unit = _units(report)["item0.wav"]
    assert unit["status"] == "ok" and unit["family"] == "decoded" and unit["bitrate_bps"] == 6000
    assert json.loads(unit["reconstruction"])["decoded_file"] == str(decoded / "item0.flac")


@pytest.mark.slow  # runs over decoded folders with resampling and metric references
def test_a_missing_file_fails_its_unit_and_the_key_follows_the_files_content(items, tmp_path):
    data, decoded = items
    saved = (decoded / "sub" / "item1.flac").read_bytes()
    (decoded / "sub" / "item1.flac").unlink()
    raw = _config(data, tmp_path / "out", {"folder": str(decoded), "label": "mine"})
    first = run_raw(raw, tmp_path)
    reasons = {r[0]: r[4] for r in export_values(first)}
    assert reasons["sub/item1.wav"] == f"no decoded file for sub/item1.wav in {decoded}"
    assert reasons["item0.wav"] is None and first.units_failed == 1
    assert _units(first)["sub/item1.wav"]["status"] == "failed"
    again = run_raw(raw, tmp_path)
    assert again.units_run == 0  # nothing changed: nothing is read again
    (decoded / "sub" / "item1.flac").write_bytes(saved)
    x = audio.load(data / "item0.wav").samples
    sf.write(decoded / "item0.flac", (0.5 * x).T, 16000, subtype="PCM_24")  # re-decoded: other content
    fixed = run_raw(raw, tmp_path)
    assert fixed.units_run == 2 and fixed.units_failed == 0
    values = {(r[0], r[2]): r[3] for r in export_values(fixed)}
    assert values[("item0.wav", "si_sdr")] > 60  # a scaled copy of the reference: SI-SDR ignores the gain
    assert values[("sub/item1.wav", "si_sdr")] is not None


def test_length_rate_and_channel_mismatches_are_one_line_each(items, tmp_path):
    data, decoded = items
    y0 = audio.load(decoded / "item0.flac").samples
    sf.write(decoded / "item0.flac", y0[:, :4800].T, 16000, subtype="PCM_24")  # 0.3 s of a 0.5 s item
    y1 = audio.load(decoded / "sub" / "item1.flac").samples
    sf.write(decoded / "sub" / "item1.flac", y1.T, 8000, subtype="PCM_24")  # a header claiming 8 kHz
    report = run_raw(_config(data, tmp_path / "out", {"folder": str(decoded), "label": "mine"}), tmp_path)
    reasons = {r[0]: r[4] for r in export_values(report)}
    assert reasons["item0.wav"] == (f"{decoded / 'item0.flac'}: 0.300 s at 16000 Hz, but item0.wav is 0.500 s at "
                                    f"16000 Hz: lengths differ by 0.200 s, more than length_tolerance_s=0.1")
    assert reasons["sub/item1.wav"] == (f"{decoded / 'sub' / 'item1.flac'}: 1.000 s at 8000 Hz, but sub/item1.wav is "
                                        f"0.500 s at 16000 Hz: lengths differ by 0.500 s, more than "
                                        f"length_tolerance_s=0.1")
    assert {u["status"] for u in _units(report).values()} == {"failed"}
    loose = run_raw(_config(data, tmp_path / "loose", {"folder": str(decoded), "label": "mine",
                                                       "length_tolerance_s": 0.25}), tmp_path)
    unit = _units(loose)["item0.wav"]
    assert unit["status"] == "ok" and json.loads(unit["reconstruction"])["padded_samples"] == 3200


@pytest.mark.slow  # runs over decoded folders with resampling and metric references
def test_a_decoding_at_another_rate_is_resampled_like_a_codec_output(items, tmp_path):
    data, decoded = items
    same = export_values(run_raw(_config(data, tmp_path / "same", {"folder": str(decoded), "label": "m"}),
                                 tmp_path))
    y = audio.load(decoded / "item0.flac").samples
    sf.write(decoded / "item0.flac", audio.resample(y, 16000, 24000).T, 24000, subtype="PCM_24")
    report = run_raw(_config(data, tmp_path / "other", {"folder": str(decoded), "label": "m"}), tmp_path)
    rec = json.loads(_units(report)["item0.wav"]["reconstruction"])
    assert rec["decoded_rate"] == 24000 and rec["resampler"] == audio.RESAMPLER and rec["output_samples"] == 8000
    before = {r[2]: r[3] for r in same if r[0] == "item0.wav"}
    after = {r[2]: r[3] for r in export_values(report) if r[0] == "item0.wav"}
    assert after["si_sdr"] == pytest.approx(before["si_sdr"], abs=0.1)  # a round trip through 24 kHz


def test_a_mono_decoding_of_a_stereo_item_needs_channel_policy_mono(stereo_dataset, tmp_path):
    folder = tmp_path / "dec"
    folder.mkdir()
    x = audio.load(stereo_dataset / "st.wav").samples
    sf.write(folder / "st.wav", x.mean(axis=0, keepdims=True).T, 24000, subtype="FLOAT")
    entry = {"folder": str(folder), "label": "mono"}
    report = run_raw(_config(stereo_dataset, tmp_path / "pc", entry, metrics=["si_sdr"]), tmp_path)
    assert export_values(report)[0][4] == (f"{folder / 'st.wav'}: has 1 channel(s), the item 2; a decoded file "
                                           f"keeps the item's channels (or is mono under channel_policy: mono)")
    mono = run_raw(_config(stereo_dataset, tmp_path / "mono", entry, metrics=["si_sdr"], channel_policy="mono"),
                   tmp_path)
    assert export_values(mono)[0][4] is None


def test_codes_give_codebook_usage_and_bad_codes_fail_the_unit(items, tmp_path, rng):
    data, decoded = items
    codes_dir = tmp_path / "codes"
    (codes_dir / "sub").mkdir(parents=True)
    codes = {"item0.wav": rng.integers(0, 8, (2, 25)), "sub/item1.wav": rng.integers(0, 4, (2, 25))}
    for rel, c in codes.items():
        np.save(codes_dir / rel.replace(".wav", ".npy"), c)
    entry = {"folder": str(decoded), "label": "coded", "codes": str(codes_dir), "cardinality": 8}
    report = run_raw(_config(data, tmp_path / "out", entry, metrics=["si_sdr"]), tmp_path)
    import pandas as pd

    usage = pd.read_csv(report.exports["codebook_usage_csv"])
    for q in range(2):  # perplexity 2^H of each codebook's pooled counts, computed here with numpy
        counts = np.bincount(np.concatenate([c[q] for c in codes.values()]), minlength=8)
        p = counts[counts > 0] / counts.sum()
        assert usage.loc[usage["codebook"] == q, "perplexity"].item() == pytest.approx(2 ** -(p * np.log2(p)).sum())
    assert _units(report)["item0.wav"]["frame_rate"] == pytest.approx(50.0)  # 25 frames / 0.5 s
    np.save(codes_dir / "item0.npy", np.full((2, 25), 9))
    bad = run_raw(_config(data, tmp_path / "bad", entry, metrics=["si_sdr"]), tmp_path)
    reasons = {r[0]: r[4] for r in export_values(bad)}
    assert reasons["item0.wav"] == f"{codes_dir / 'item0.npy'}: codes outside [0, 8) (min 9, max 9); check cardinality"
    assert reasons["sub/item1.wav"] is None


@pytest.mark.parametrize("entry,expected", [
    ({"folder": "nowhere", "label": "x"}, "codecs.0.decoded.folder: {tmp}/nowhere is not a folder"),
    ({"folder": "decoded", "label": "a & b"}, "codecs.0.decoded.label: 'a & b' contains '&'"),
    ({"folder": "decoded", "label": "x", "codes": "decoded"}, "codecs.0.decoded: Value error, 'codes' and "
                                                              "'cardinality' go together"),
    ({"folder": "decoded"}, "codecs.0.decoded.label: Field required"),
    ({"folder": "decoded", "label": "x", "bitrate_kbps": 0}, "codecs.0.decoded.bitrate_kbps: Input should be greater"),
    ({"folder": "decoded", "label": "x", "speed": 1}, "codecs.0.decoded.speed: unknown field"),
])
def test_decoded_entry_problems_name_their_field(items, tmp_path, entry, expected):
    data, _ = items
    with pytest.raises(ConfigError) as info:
        validate_config(_config(data, tmp_path / "out", entry), tmp_path)
    expected = expected.format(tmp=tmp_path)
    assert any(p.startswith(expected.replace("Value error, ", "")) for p in info.value.problems), info.value.problems


def test_a_decoded_entry_is_one_form_among_spec_and_family(items, tmp_path):
    data, decoded = items
    raw = _config(data, tmp_path / "out", {"folder": "decoded", "label": "x"})
    raw["codecs"][0]["spec"] = "lowpass"
    with pytest.raises(ConfigError, match="codecs.0: give exactly one of 'spec', 'family' .+ or 'decoded'"):
        validate_config(raw, tmp_path)
    config, specs = validate_config(_config(data, tmp_path / "out", {"folder": "decoded", "label": "x y"}), tmp_path)
    assert str(specs[0]) == f"decoded?folder={decoded}&label=x y&length_tolerance_s=0.1"
    assert not math.isnan(config.max_delay_s)
