import math
import sqlite3

import numpy as np
import pandas as pd
import pytest

from evalkit.metrics import Reference, get_metrics, score_pair
from evalkit.runner import run_evaluation, validate_config
from evalkit.runner.exports import bootstrap_ci
from tests.runner.conftest import make_config


def _run(raw, tmp_path, **kwargs):
    config, specs = validate_config(raw, tmp_path)
    return run_evaluation(config, specs, progress=False, **kwargs)


def _rows(report):
    db = sqlite3.connect(report.store)
    return db.execute("SELECT result_key, value, reason FROM results ORDER BY result_key").fetchall()


def test_end_to_end_bad_items_skips_and_exports(dataset, tmp_path):
    report = _run(make_config(dataset, tmp_path / "out"), tmp_path)
    assert report.units_total == 6 * 3 and report.units_run == 6 * 2
    assert len(report.variants_skipped) == 1 and "encodec_24khz-d7cc33bc.th not found" in report.variants_skipped[0][1]
    db = sqlite3.connect(report.store)
    status = dict(db.execute("SELECT item_id || ' ' || codec_spec, status FROM units").fetchall())
    assert status["corrupt encodec-24khz?bandwidth=3&seed=0&weights=pretrained"] == "skipped"
    reasons = dict(db.execute("SELECT item_id, reason FROM units WHERE status = 'failed' AND family = 'lowpass'"))
    assert "corrupt.wav: cannot decode audio" in reasons["corrupt"]
    assert "silent.wav: audio is silent" in reasons["silent"]
    tiny = db.execute("SELECT reason FROM units WHERE item_id = 'tiny' AND status = 'failed'").fetchone()[0]
    assert "too short for encodec-24khz" in tiny
    # every planned, runnable (item, variant, metric) has exactly one row: value or NaN + reason
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 6 * 2 * 3
    assert db.execute("SELECT COUNT(*) FROM results WHERE value IS NULL AND reason IS NULL").fetchone()[0] == 0

    tidy = pd.read_parquet(report.exports["results_parquet"])
    assert len(tidy) == 36 and set(tidy["metric"]) == {"si_sdr", "mel_distance_22k", "stoi"}
    summary = pd.read_csv(report.exports["summary_csv"])
    lp = summary[(summary.codec_spec == "lowpass?cutoff_hz=3500") & (summary.metric == "si_sdr")].iloc[0]
    assert lp.n == 4 and lp.failures == 2  # tiny gets SI-SDR; corrupt and silent fail
    assert lp.ci_low <= lp["mean"] <= lp.ci_high

    # values equal a direct computation on the cached decoded audio
    from evalkit import audio
    unit = db.execute("SELECT decoded_path FROM units WHERE item_id = 'item0' AND family = 'lowpass'").fetchone()[0]
    ref = audio.load(dataset / "item0.wav")
    direct = score_pair(Reference(ref.samples, 16000), audio.load(unit).samples, 16000, get_metrics(["si_sdr"]))
    stored = tidy[(tidy.item_id == "item0") & (tidy.family == "lowpass") & (tidy.metric == "si_sdr")].value.iloc[0]
    assert stored == pytest.approx(direct[0].value, rel=1e-9)

    usage = pd.read_csv(report.exports["codebook_usage_csv"])
    assert list(usage.codebook) == [0, 1]  # 1.5 kbps = 2 codebooks; anchors have no codes
    assert usage.frames.iloc[0] == 3 * math.ceil(0.6 * 24000 / 320)  # padding frames excluded
    assert "si_sdr" in report.summary_table and "lowpass?cutoff_hz=3500" in report.speed_table
    assert (tmp_path / "out" / "summary.txt").is_file()


def test_rerun_skips_finished_work_and_changes_recompute_only_their_slice(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out")
    first = _run(raw, tmp_path)
    before = _rows(first)
    again = _run(raw, tmp_path)
    assert again.units_run == 0 and again.units_rescored == 0 and _rows(again) == before

    raw["metrics"] = ["si_sdr", "mel_distance_22k", "stoi", "estoi"]  # new metric: no codec rerun
    added = _run(raw, tmp_path)
    assert added.units_run == 0 and added.units_rescored == 7  # ok units only; failed ones get NaN rows directly
    rows = _rows(added)
    assert len(rows) == len(before) + 6 * 2 and set(before) <= set(rows)

    raw["codecs"].append({"spec": "lowpass?cutoff_hz=7000"})  # new codec: only its units run
    more = _run(raw, tmp_path)
    assert more.units_run == 6 and more.units_rescored == 0


def test_fresh_starts_over(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "lowpass"}], metrics=["si_sdr"])
    _run(raw, tmp_path)
    assert _run(raw, tmp_path, fresh=True).units_run == 6


def test_segment_and_max_items(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "lowpass"}], metrics=["si_sdr"])
    raw["dataset"].update(segment_seconds=0.25, max_items=2)
    report = _run(raw, tmp_path)
    db = sqlite3.connect(report.store)
    assert report.units_total == 2
    assert {r[0] for r in db.execute("SELECT input_seconds FROM units WHERE status = 'ok'")} == {0.25}


def test_process_pool_gives_the_same_results(dataset, tmp_path):
    serial = _run(make_config(dataset, tmp_path / "a"), tmp_path)
    pooled = _run(make_config(dataset, tmp_path / "b", workers=2), tmp_path)
    a, b = _rows(serial), _rows(pooled)
    assert [r[0] for r in a] == [r[0] for r in b]
    np.testing.assert_allclose([r[1] if r[1] is not None else np.nan for r in a],
                               [r[1] if r[1] is not None else np.nan for r in b], rtol=1e-3, atol=1e-4)
    # not bit-exact: pool workers run torch with 1 thread each, so convolutions sum in another order


def test_bootstrap_ci():
    assert bootstrap_ci(np.full(10, 3.0), seed=0) == (3.0, 3.0)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([1.0]), seed=0))
    values = np.random.default_rng(0).normal(5, 1, 400)
    lo, hi = bootstrap_ci(values, seed=1)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))  # normal-theory CI as an independent check
    assert lo == pytest.approx(values.mean() - half, abs=0.03) and hi == pytest.approx(values.mean() + half, abs=0.03)


def test_klt_grid_exports_accounting_and_spectrum(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", metrics=["si_sdr"], codecs=[
        {"family": "klt", "params": {"base": "encodec-24khz", "bandwidth": 1.5, "weights": "random",
                                     "dim": [64, 128]}}])
    report = _run(raw, tmp_path)
    accounting = pd.read_csv(report.exports["klt_accounting_csv"])
    assert sorted(accounting["dim"]) == [64, 128] and set(accounting["full_dim"]) == {128}
    assert accounting.set_index("dim").loc[64, "saving_codebooks"] == pytest.approx(0.5)
    spectra = pd.read_csv(report.exports["klt_spectra_csv"])
    assert len(spectra) == 2 * 128 and spectra.groupby("codec_spec")["cumulative_share"].max().round(9).eq(1).all()


def test_manifest_dataset_and_cli_run(dataset, tmp_path, capsys):
    import yaml

    from evalkit.cli import main

    manifest = tmp_path / "items.csv"
    manifest.write_text("file,category\ndata/item0.wav,speech\ndata/item2.wav,other\n")
    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=7000"}], metrics=["si_sdr"])
    raw["dataset"] = {"manifest": str(manifest)}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "lowpass?cutoff_hz=7000" in out and "units: 2 planned, 2 run" in out and "store: " in out
    tidy = pd.read_csv(tmp_path / "out" / "results.csv")
    assert dict(zip(tidy.item_id, tidy.category, strict=True)) == {"data/item0": "speech", "data/item2": "other"}
    assert (tmp_path / "out" / "run.log").is_file()
    assert main(["run", str(path), "--workers", "0"]) == 2
    assert "--workers: expected an integer >= 1, got 0" in capsys.readouterr().err
    manifest.write_text("path,category\ndata/item0.wav,speech\n")
    assert main(["run", str(path)]) == 2
    assert "dataset.manifest: items.csv has no 'file' column" in capsys.readouterr().err
