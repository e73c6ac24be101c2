"""Speech metrics in `evalkit run`: reference rows once per item, deltas in the exports, transcripts from the
manifest (and in the result keys), applicability by manifest category."""

import csv

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from evalkit import audio
from evalkit.metrics import get_metric
from evalkit.metrics.dnsmos import dnsmos_scores
from evalkit.runner.config import decode_settings, score_settings, validate_config
from evalkit.runner.plan import REFERENCE, list_items, plan_variant, result_key, unit_key
from evalkit.runner.run import _metrics_for, run_evaluation
from evalkit.runner.store import Store
from tests.conftest import DEMO

# slow: a full speech-metric run (DNSMOS, ASR)
pytestmark = [pytest.mark.filterwarnings("ignore:pkg_resources is deprecated"), pytest.mark.slow]
RATE = 16_000
TEXT = "you have successfully installed"


def _write_manifest(folder, text):
    rows = [{"file": "talk.wav", "category": "speech", "text": text},
            {"file": "tune.wav", "category": "music", "text": ""}]
    with open(folder / "MANIFEST.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "category", "text"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A speech item with a transcript and a music item without, 0.6 s at 16 kHz, through two anchors."""
    folder = tmp_path_factory.mktemp("speech_run")
    for name, source in [("talk", "speech_demo-congrats"), ("tune", "music_guit_em9")]:
        clip = audio.load(DEMO / f"{source}.flac", channel_policy="mono")
        x = audio.resample(clip.samples[:, 44100: 44100 + int(0.6 * 44100)], 44100, RATE)
        sf.write(folder / f"{name}.wav", x.T, RATE, subtype="FLOAT")
    _write_manifest(folder, TEXT)
    raw = {"dataset": {"folder": str(folder), "glob": "*.wav"},
           "codecs": [{"family": "lowpass", "params": {"cutoff_hz": [3500, 7000]}}],
           "metrics": ["dnsmos_ovrl", "wer", "dwer"], "output": str(folder / "out"), "workers": 0, "seed": 0}
    config, specs = validate_config(raw, folder)
    return folder, config, specs, run_evaluation(config, specs, progress=False)


def _rows(config):
    with Store(config.output / "results.sqlite") as store:
        return store.query("SELECT r.*, u.item_id AS unit_item FROM results r JOIN units u USING (unit_key)")


def test_reference_rows_once_per_item_and_deltas(run):
    folder, config, specs, first = run
    rows = _rows(config)
    reference = [r for r in rows if r["codec_spec"] == str(REFERENCE.spec)]
    assert sorted((r["item_id"], r["metric"]) for r in reference) == [("talk.wav", "dnsmos_ovrl"),
                                                                          ("tune.wav", "dnsmos_ovrl")]
    talk = audio.load(folder / "talk.wav").samples[0]
    expected = dnsmos_scores(np.ascontiguousarray(talk, dtype=np.float32))["ovrl_mos"]
    assert next(r["value"] for r in reference if r["item_id"] == "talk.wav") == pytest.approx(expected, abs=1e-6)
    assert first.units_total == 4 and first.units_run == 4  # the reference pseudo-units are not codec units

    tidy = pd.read_csv(first.exports["results_csv"])
    dnsmos = tidy[(tidy.metric == "dnsmos_ovrl") & (tidy.codec_spec != "reference")]
    assert len(dnsmos) == 4 and np.allclose(dnsmos["delta"], dnsmos["value"] - dnsmos["reference_value"])
    assert tidy.loc[tidy.metric == "dwer", "delta"].isna().all()
    summary = pd.read_csv(first.exports["summary_csv"])
    lowpass = summary[(summary.metric == "dnsmos_ovrl") & (summary.codec_spec == "lowpass?cutoff_hz=3500")]
    assert lowpass["delta_mean"].iloc[0] == pytest.approx(
        dnsmos[dnsmos.codec_spec == "lowpass?cutoff_hz=3500"]["delta"].mean())
    assert "Δ ref" in first.summary_table

    again = run_evaluation(config, specs, progress=False)
    assert again.units_run == 0 and len(_rows(config)) == len(rows)


def test_listed_metrics_run_on_every_item_and_wer_needs_text(run):
    _, config, _, _ = run
    rows = _rows(config)
    assert {r["item_id"] for r in rows if r["metric"] == "dwer"} == {"talk.wav", "tune.wav"}  # listed: every item
    wer = {r["item_id"]: r for r in rows if r["metric"] == "wer"}
    assert wer["talk.wav"]["value"] is not None and 0 <= wer["talk.wav"]["value"] <= 2
    assert wer["tune.wav"]["value"] is None and "no transcript" in wer["tune.wav"]["reason"]


def test_changed_transcript_rescores_only_wer(run):
    folder, config, specs, _ = run
    _write_manifest(folder, TEXT + " and executed")
    try:
        report = run_evaluation(config, specs, progress=False)
        talk = next(i for i in list_items(config.dataset) if i.item_id == "talk.wav")
        assert talk.text == TEXT + " and executed"
        keys = {r["result_key"] for r in _rows(config)}
        for spec in specs:
            unit = unit_key(talk, plan_variant(spec, config.device), decode_settings(config))
            assert result_key(unit, get_metric("wer"), score_settings(config), talk.text) in keys
        assert report.units_rescored == 2 and report.units_run == 0  # the talk item's two units, from cache
    finally:
        _write_manifest(folder, TEXT)


def test_applicable_speech_metrics_follow_the_category(run):
    folder, config, specs, _ = run
    applicable = config.model_copy(update={"metrics": "applicable"})
    per_item = {i.item_id: {m.info.name for m in _metrics_for(applicable, i)} for i in list_items(config.dataset)}
    speech = {"dnsmos_ovrl", "dnsmos_p808", "speaker_similarity", "wer", "cer", "dwer"}
    assert speech <= per_item["talk.wav"] and not speech & per_item["tune.wav"]
    assert "si_sdr" in per_item["tune.wav"] and "pesq_wb" in per_item["talk.wav"]
    assert not {"pesq_wb", "pesq_nb", "stoi", "estoi", "visqol_speech"} & per_item["tune.wav"]  # speech measures
