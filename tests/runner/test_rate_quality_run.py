"""A run with reference codecs: measured bitrates stored and used, rate_quality.csv, compare on the run folder."""

import json
import sqlite3

import pandas as pd
import pytest
import soundfile as sf

from evalkit import audio
from evalkit.cli import main
from evalkit.codecs import build_codec
from evalkit.runner import run_evaluation, validate_config
from evalkit.runner.store import Store
from tests.conftest import DEMO

CODECS = [{"family": "opus", "params": {"bitrate_kbps": [6, 12, 24]}},
          {"family": "mp3", "params": {"bitrate_kbps": [32, 64]}},
          {"spec": "lowpass?cutoff_hz=3500"}]


@pytest.fixture
def items(tmp_path):
    """A mono 16 kHz speech item and a stereo 16 kHz music item, 0.6 s each."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name, stem in (("speech", "speech_demo-congrats"), ("music", "music_guit_em9")):
        clip = audio.load(DEMO / f"{stem}.flac")
        x = audio.resample(clip.samples[:, 44100: 44100 + int(0.6 * 44100)], 44100, 16000)
        sf.write(folder / f"{name}.wav", x.T, 16000, subtype="FLOAT")
    return folder


@pytest.mark.slow
def test_run_stores_measured_bitrates_and_writes_rate_quality(items, tmp_path, capsys):
    raw = {"dataset": {"folder": str(items), "glob": "*.wav"}, "codecs": CODECS,
           "metrics": ["si_sdr", "mel_distance_22k"], "output": str(tmp_path / "out"), "workers": 0, "seed": 0}
    config, specs = validate_config(raw, tmp_path)
    report = run_evaluation(config, specs, progress=False)
    assert report.units_run == 2 * 6 and report.units_failed == 0

    db = sqlite3.connect(report.store)
    units = pd.read_sql("SELECT item_id, codec_spec, family, bitrate_bps, measured_bitrate_bps FROM units", db)
    opus6 = units[units.codec_spec == "opus?application=audio&bitrate_kbps=6"].set_index("item_id")
    assert (opus6.bitrate_bps == 6000).all()
    stereo = audio.load(items / "music.wav").samples
    direct = build_codec("opus?bitrate_kbps=6").reconstruct(stereo, 16000).report.measured_bitrate_bps
    assert opus6.loc["music.wav", "measured_bitrate_bps"] == pytest.approx(direct)  # one stereo stream, measured
    assert units[units.family == "lowpass"].measured_bitrate_bps.isna().all()

    summary = pd.read_csv(report.exports["summary_csv"])
    row = summary[(summary.codec_spec == "opus?application=audio&bitrate_kbps=6") & (summary.metric == "si_sdr")]
    assert row.bitrate_kbps.iloc[0] == pytest.approx(opus6.measured_bitrate_bps.mean() / 1000)
    assert row.nominal_bitrate_kbps.iloc[0] == 6

    rq = pd.read_csv(tmp_path / "out" / "rate_quality.csv")
    assert report.exports["rate_quality_csv"] == tmp_path / "out" / "rate_quality.csv"
    assert set(rq.family) == {"opus", "mp3"}  # the low-pass anchor has no bitrate
    assert len(rq) == (3 + 2) * 2 and rq[rq.family == "opus"].n.eq(2).all() and rq.failures.eq(0).all()
    assert report.exports["codebook_usage_csv"].read_text().strip() == ""  # no codes: absent, not failed
    assert db.execute("SELECT COUNT(*) FROM units WHERE codes_path IS NOT NULL").fetchone()[0] == 0

    assert main(["compare", str(tmp_path / "out"), "--metric", "mel_distance_22k", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["anchor"] == "opus" and set(out["families"]) == {"mp3"} and out["families"]["mp3"]["points"] == 2

    again = run_evaluation(config, specs, progress=False)
    assert again.units_run == 0 and again.units_rescored == 0


def test_a_store_written_before_measured_bitrates_gets_the_column(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE units (unit_key TEXT PRIMARY KEY, item_id TEXT NOT NULL, codec_spec TEXT NOT NULL, "
               "status TEXT NOT NULL, bitrate_bps REAL)")
    db.execute("INSERT INTO units VALUES ('k', 'item', 'encodec-24khz?bandwidth=6', 'ok', 6000)")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.unit("k")["measured_bitrate_bps"] is None and store.unit("k")["bitrate_bps"] == 6000
