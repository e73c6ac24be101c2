"""Items a codec codes in chunks (evalkit.codecs.chunking) have their own unit keys: chunked and unchunked
results never mix, and items coded whole keep the keys they always had. The threshold is lowered in the test."""

import json
import sqlite3

import pytest
import soundfile as sf

from evalkit.codecs.chunking import Chunking
from evalkit.codecs.qincodec.adapter import QincodecCodec
from evalkit.runner.plan import Item, chunking_for, plan_variant, unit_key
from tests.conftest import DEMO
from tests.runner.conftest import make_config, run_raw

CODEC = "qincodec?bitrate_kbps=8"


@pytest.fixture
def lengths_dataset(tmp_path):
    """A 2.0 s and a 0.8 s item at 24 kHz."""
    folder = tmp_path / "data"
    folder.mkdir()
    data, rate = sf.read(DEMO / "speech_demo-congrats.flac", dtype="float32", always_2d=True)
    from evalkit import audio

    x = audio.resample(data[: 2 * rate, :1].T, rate, 24_000)
    sf.write(folder / "long.wav", x.T, 24_000, subtype="FLOAT")
    sf.write(folder / "short.wav", x[:, : int(0.8 * 24_000)].T, 24_000, subtype="FLOAT")
    return folder


def _units(report) -> dict[str, tuple[str, dict]]:
    db = sqlite3.connect(report.store)
    rows = db.execute("SELECT u.item_id, u.unit_key, u.reconstruction FROM units u JOIN current_plan p "
                      "ON u.unit_key = p.unit_key WHERE u.codec_spec LIKE 'qincodec%'").fetchall()
    return {item: (key, json.loads(rec)) for item, key, rec in rows}


def _si_sdr(report) -> dict[str, float]:
    db = sqlite3.connect(report.store)
    rows = db.execute("SELECT u.item_id, r.value FROM results r JOIN units u ON r.unit_key = u.unit_key "
                      "JOIN current_plan p ON u.unit_key = p.unit_key WHERE r.metric = 'si_sdr'").fetchall()
    return dict(rows)


@pytest.mark.slow  # three QinCodec runs
def test_chunked_items_get_their_own_keys_and_short_items_keep_theirs(lengths_dataset, tmp_path, monkeypatch):
    raw = make_config(lengths_dataset, tmp_path / "out", codecs=[{"spec": CODEC}], metrics=["si_sdr"])
    whole = run_raw(raw, tmp_path)
    before = _units(whole)
    assert whole.units_run == 2 and all(rec["chunked"] is None for _, rec in before.values())

    monkeypatch.setattr(QincodecCodec, "chunking", Chunking(0.5, 0.5, above_s=1.0))
    chunked = run_raw(raw, tmp_path)  # same output folder: only what chunking changes is computed again
    after = _units(chunked)
    assert chunked.units_run == 1
    assert after["long.wav"][0] != before["long.wav"][0]
    assert after["long.wav"][1]["chunked"] == {"chunk_s": 0.5, "context_s": 0.5}
    assert after["short.wav"] == before["short.wav"]  # 0.8 s is under the threshold: same key, same unit
    # chunking changes the stored value by float rounding only (QinCodec's receptive field fits in 0.5 s)
    values = _si_sdr(whole), _si_sdr(chunked)
    assert values[1]["long.wav"] == pytest.approx(values[0]["long.wav"], abs=1e-3)

    monkeypatch.setattr(QincodecCodec, "chunking", Chunking(0.5, 0.25, above_s=1.0))  # other context: other key
    again = run_raw(raw, tmp_path)
    assert again.units_run == 1 and _units(again)["long.wav"][0] not in (before["long.wav"][0],
                                                                          after["long.wav"][0])


def test_unit_key_adds_the_chunking_only_for_chunked_items(monkeypatch):
    from evalkit.codecs import parse_spec

    settings = {"channel_policy": "per_channel", "segment_seconds": None}
    long_item = Item("a.wav", None, "0" * 64, sample_rate=16_000, seconds=40.0)
    variant = plan_variant(parse_spec(CODEC), "cpu")
    assert variant.chunking == QincodecCodec.chunking
    chunking = chunking_for(long_item, variant, settings)
    assert chunking == variant.chunking
    assert unit_key(long_item, variant, settings, chunking) != unit_key(long_item, variant, settings)
    cut = {**settings, "segment_seconds": 20.0}  # the dataset's cut makes it a 20 s input: coded whole
    assert chunking_for(long_item, variant, cut) is None
    short = Item("a.wav", None, "0" * 64, sample_rate=16_000, seconds=30.0)  # not longer than 30 s
    assert chunking_for(short, variant, settings) is None
    anchor = plan_variant(parse_spec("lowpass"), "cpu")
    assert anchor.chunking is None and chunking_for(long_item, anchor, settings) is None
