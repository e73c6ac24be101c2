import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from evalkit import audio
from evalkit.runner.exports import bootstrap_ci
from tests.conftest import DEMO
from tests.runner.conftest import export_values, make_config, run_raw


def _rows(report):
    db = sqlite3.connect(report.store)
    return db.execute("SELECT result_key, value, reason FROM results ORDER BY result_key").fetchall()


def _si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Zero-mean SI-SDR in float64 by its definition (Le Roux et al. 2019), per channel then mean."""
    values = []
    for s, s_hat in zip(reference.astype(np.float64), estimate.astype(np.float64), strict=True):
        s, s_hat = s - s.mean(), s_hat - s_hat.mean()
        target = (s_hat @ s) / (s @ s) * s
        values.append(10 * np.log10((target @ target) / ((target - s_hat) @ (target - s_hat))))
    return float(np.mean(values))


@pytest.mark.slow  # a codec grid with EnCodec over the test dataset
def test_end_to_end_bad_items_skips_and_exports(dataset, tmp_path):
    report = run_raw(make_config(dataset, tmp_path / "out"), tmp_path)
    assert report.units_total == 6 * 3 and report.units_run == 6 * 2
    assert len(report.variants_skipped) == 1 and "encodec_24khz-d7cc33bc.th not found" in report.variants_skipped[0][1]
    db = sqlite3.connect(report.store)
    status = dict(db.execute("SELECT item_id || ' ' || codec_spec, status FROM units").fetchall())
    assert status["corrupt.wav encodec-24khz?bandwidth=3&seed=0&weights=pretrained"] == "skipped"
    reasons = dict(db.execute("SELECT item_id, reason FROM units WHERE status = 'failed' AND family = 'lowpass'"))
    assert "corrupt.wav: cannot decode audio" in reasons["corrupt.wav"]
    assert "silent.wav: audio is silent" in reasons["silent.wav"]
    tiny = db.execute("SELECT reason FROM units WHERE item_id = 'tiny.wav' AND status = 'failed'").fetchone()[0]
    assert "too short for encodec-24khz" in tiny
    # every planned, runnable (item, variant, metric) has exactly one row: value or NaN + reason
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 6 * 2 * 3
    assert db.execute("SELECT COUNT(*) FROM results WHERE value IS NULL AND reason IS NULL").fetchone()[0] == 0

    tidy = pd.read_parquet(report.exports["results_parquet"])
    assert len(tidy) == 36 and set(tidy["metric"]) == {"si_sdr", "mel_distance_22k", "stoi"}
    summary = pd.read_csv(report.exports["summary_csv"])
    lp = summary[(summary.codec_spec == "lowpass?cutoff_hz=3500") & (summary.metric == "si_sdr")].iloc[0]
    lp_values = tidy[(tidy.family == "lowpass") & (tidy.metric == "si_sdr")].set_index("item_id")["value"]
    assert lp.n == 3 and lp.failures == 3  # corrupt and silent fail; tiny (5 ms) is too short for SI-SDR
    assert lp["mean"] == pytest.approx(np.mean([lp_values[f"item{i}.wav"] for i in range(3)]))
    tiny_si_sdr = tidy[(tidy.item_id == "tiny.wav") & (tidy.family == "lowpass") & (tidy.metric == "si_sdr")].iloc[0]
    assert np.isnan(tiny_si_sdr.value) and tiny_si_sdr.reason.startswith("too short for si_sdr: 0.005 s")

    # the stored value is SI-SDR (by its definition) of the item against the cached decoded audio, and the
    # cached audio is the item low-passed: nothing above the cut-off's stop band is left
    decoded_path = db.execute("SELECT decoded_path FROM units WHERE item_id = 'item0.wav' AND family = 'lowpass'"
                              ).fetchone()[0]
    ref = audio.load(dataset / "item0.wav").samples
    decoded = audio.load(tmp_path / "out" / decoded_path).samples  # relative to the run folder
    assert lp_values["item0.wav"] == pytest.approx(_si_sdr(ref, decoded), rel=1e-6)
    spectrum = np.abs(np.fft.rfft(decoded[0])) / np.abs(np.fft.rfft(ref[0])).max()
    freqs = np.fft.rfftfreq(decoded.shape[1], 1 / 16000)
    assert spectrum[freqs >= 4500].max() < 10 ** (-40 / 20) and decoded.shape == ref.shape

    usage = pd.read_csv(report.exports["codebook_usage_csv"])
    assert list(usage.codebook) == [0, 1]  # 1.5 kbps = 2 codebooks; anchors have no codes
    assert usage.frames.iloc[0] == 3 * math.ceil(0.6 * 24000 / 320)  # padding frames excluded
    assert "si_sdr" in report.summary_table and "lowpass?cutoff_hz=3500" in report.speed_table
    assert (tmp_path / "out" / "summary.txt").read_text() == report.summary_table + "\n"


@pytest.mark.slow  # a codec grid with EnCodec over the test dataset
def test_rerun_skips_finished_work_and_changes_recompute_only_their_slice(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out")
    first = run_raw(raw, tmp_path)
    before = _rows(first)
    again = run_raw(raw, tmp_path)
    assert again.units_run == 0 and again.units_rescored == 0 and _rows(again) == before

    raw["metrics"] = ["si_sdr", "mel_distance_22k", "stoi", "estoi"]  # new metric: no codec rerun
    added = run_raw(raw, tmp_path)
    assert added.units_run == 0 and added.units_rescored == 7  # ok units only; failed ones get NaN rows directly
    rows = _rows(added)
    assert len(rows) == len(before) + 6 * 2 and set(before) <= set(rows)

    raw["codecs"].append({"spec": "lowpass?cutoff_hz=7000"})  # new codec: only its units run
    more = run_raw(raw, tmp_path)
    assert more.units_run == 6 and more.units_rescored == 0


def test_fresh_starts_over(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "lowpass"}], metrics=["si_sdr"])
    run_raw(raw, tmp_path)
    assert run_raw(raw, tmp_path, fresh=True).units_run == 6


def test_segment_and_max_items(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "lowpass"}], metrics=["si_sdr"])
    raw["dataset"].update(segment_seconds=0.25, max_items=2)
    report = run_raw(raw, tmp_path)
    db = sqlite3.connect(report.store)
    assert report.units_total == 2
    assert {r[0] for r in db.execute("SELECT input_seconds FROM units WHERE status = 'ok'")} == {0.25}


SETTINGS = [  # (field change, codec, units recomputed, units rescored)
    (("channel_policy", "mono"), "encodec-24khz?bandwidth=1.5&weights=random", 1, 0),
    (("max_delay_s", 0.0), "lowpass?cutoff_hz=3500", 0, 2),
    (("dataset.segment_seconds", 0.2), "lowpass?cutoff_hz=3500", 3, 0),  # the corrupt item fails again
]


@pytest.mark.parametrize("change,codec,run,rescored", [
    pytest.param(*s, id=s[0][0], marks=pytest.mark.slow if s[0][0] == "channel_policy" else ())  # EnCodec runs
    for s in SETTINGS])
def test_changed_setting_equals_a_fresh_run(small_dataset, stereo_dataset, tmp_path, change, codec, run, rescored):
    """Every setting that changes decoded audio or metric values is in the keys: changing it recomputes
    exactly its slice, and the exports equal those of a fresh run into an empty folder."""
    folder = stereo_dataset if change[0] == "channel_policy" else small_dataset
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": codec}], metrics=["si_sdr", "stoi"])
    run_raw(raw, tmp_path)
    field, value = change
    target = raw["dataset"] if field.startswith("dataset.") else raw
    target[field.removeprefix("dataset.")] = value
    changed = run_raw(raw, tmp_path)
    assert (changed.units_run, changed.units_rescored) == (run, rescored)
    fresh = run_raw({**raw, "output": str(tmp_path / "fresh")}, tmp_path)
    assert export_values(changed) == export_values(fresh)
    plan_units = [sorted(r[0] for r in sqlite3.connect(x.store).execute("SELECT unit_key FROM current_plan"))
                  for x in (changed, fresh)]
    assert plan_units[0] == plan_units[1] and len(plan_units[0]) == len(export_values(fresh)) // 2
    pd.testing.assert_frame_equal(pd.read_csv(changed.exports["summary_csv"]),
                                  pd.read_csv(fresh.exports["summary_csv"]))


def test_device_is_part_of_codec_unit_keys_but_not_of_anchor_keys():
    from evalkit.codecs import parse_spec
    from evalkit.runner.plan import Item, plan_variant, unit_key

    item = Item("a.wav", None, "0" * 64, sample_rate=16000)
    codec = parse_spec("encodec-24khz?weights=random")
    anchor = parse_spec("lowpass")
    settings = {"channel_policy": "per_channel", "segment_seconds": None}
    keys = {device: (unit_key(item, plan_variant(codec, device), settings),
                     unit_key(item, plan_variant(anchor, device), settings)) for device in ("cpu", "cuda")}
    assert keys["cpu"][0] != keys["cuda"][0] and keys["cpu"][1] == keys["cuda"][1]


def test_the_filtering_librarys_version_is_part_of_anchor_keys(monkeypatch):
    """The anchors filter with scipy.fft: another scipy may round their output otherwise, so its version is keyed."""
    from evalkit.codecs import anchors, parse_spec
    from evalkit.runner.plan import plan_variant
    from evalkit.versions import installed_version

    anchor = parse_spec("lowpass?cutoff_hz=3500")
    assert f"scipy={installed_version('scipy')}" in plan_variant(anchor).identity
    before = plan_variant(anchor).identity
    monkeypatch.setattr(anchors, "installed_version", lambda dist, missing: "0.0-other")
    assert plan_variant(anchor).identity != before


def test_exports_hold_exactly_the_current_plan(dataset, tmp_path, monkeypatch):
    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}],
                      metrics=["si_sdr", "stoi"])
    run_raw(raw, tmp_path)
    raw["metrics"] = ["si_sdr"]  # a metric removed from the config
    removed = run_raw(raw, tmp_path)
    tidy = pd.read_csv(removed.exports["results_csv"])
    assert set(tidy.metric) == {"si_sdr"} and len(tidy) == 6
    assert "stoi" not in removed.summary_table

    from evalkit.metrics import PAIR_METRICS

    info = PAIR_METRICS["si_sdr"].info  # a new definition version of a metric: old rows are not exported
    monkeypatch.setattr(PAIR_METRICS["si_sdr"], "info", info.__class__(**{**info.__dict__, "version": "999"}))
    bumped = run_raw(raw, tmp_path)
    assert bumped.units_rescored == 4
    summary = pd.read_csv(bumped.exports["summary_csv"])
    assert len(pd.read_csv(bumped.exports["results_csv"])) == 6
    assert summary.set_index("metric").loc["si_sdr", "n"] == 3  # not 6 (tiny.wav is too short for SI-SDR)
    assert pd.read_csv(bumped.exports["results_csv"]).metric_version.astype(str).eq("999").all()
    assert len(_rows(bumped)) == 6 + 6 + 6  # the store keeps history


def test_an_item_is_a_file(tmp_path):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    x = np.random.default_rng(0).uniform(-0.3, 0.3, (4000, 1)).astype(np.float32)
    for name in ("a.wav", "b.wav", "sub/a.wav"):  # three files, two of them byte-identical
        sf.write(folder / name, x if name != "b.wav" else x * 0.5, 16000, subtype="FLOAT")
    sf.write(folder / "a.flac", x, 16000)  # same stem, other extension
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}], metrics=["si_sdr"])
    raw["dataset"]["glob"] = "**/*.*"
    report = run_raw(raw, tmp_path)
    tidy = pd.read_csv(report.exports["results_csv"])
    assert sorted(tidy.item_id) == ["a.flac", "a.wav", "b.wav", "sub/a.wav"]
    assert pd.read_csv(report.exports["summary_csv"]).n.iloc[0] == 4

    manifest = tmp_path / "items.csv"
    manifest.write_text("file,category\ngone1.wav,speech\ngone2.wav,music\ndata/a.wav,music\n")
    raw["dataset"] = {"manifest": str(manifest)}
    missing = run_raw({**raw, "output": str(tmp_path / "out2")}, tmp_path)
    tidy = pd.read_csv(missing.exports["results_csv"])
    assert sorted(tidy.item_id) == ["data/a.wav", "gone1.wav", "gone2.wav"]
    assert tidy.set_index("item_id").loc["gone2.wav", "reason"].endswith("gone2.wav: file not found")


def test_output_folder_inside_the_dataset_is_never_read(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    x = np.random.default_rng(1).uniform(-0.3, 0.3, (2, 4000)).astype(np.float32)
    for i in range(2):
        sf.write(folder / f"x{i}.wav", x[i], 16000, subtype="FLOAT")
    raw = make_config(folder, folder / "runs" / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}],
                      metrics=["si_sdr"])
    raw["dataset"]["glob"] = "**/*.wav"
    first = export_values(run_raw(raw, tmp_path))
    second = run_raw(raw, tmp_path)
    assert second.units_total == 2 and export_values(second) == first


@pytest.mark.slow  # a codec run
def test_summary_labels_come_from_the_variant(small_dataset, tmp_path):
    """The first row of each random-weights variant (corrupt.wav) failed; its labels still show everywhere."""
    raw = make_config(small_dataset, tmp_path / "out", metrics=["si_sdr"], codecs=[
        {"spec": "encodec-24khz?bandwidth=1.5&weights=random"},
        {"spec": "klt?base=encodec-24khz&bandwidth=1.5&weights=random&dim=64"}])
    raw["dataset"]["max_items"] = 2
    report = run_raw(raw, tmp_path)
    label = "random (seed 0) - NOT a pretrained model"
    summary = pd.read_csv(report.exports["summary_csv"])
    assert summary.bitrate_kbps.tolist() == [1.5, 1.5] and summary.weights.tolist() == [label, label]
    tidy = pd.read_csv(report.exports["results_csv"])
    assert tidy.item_id.iloc[0] == "corrupt.wav" and tidy.weights.eq(label).all()
    assert tidy.nominal_bitrate_kbps.eq(1.5).all()
    ok = tidy.status == "ok"  # a failed unit has no bitrate (it is not counted at the nominal one)
    assert tidy.bitrate_kbps[ok].eq(1.5).all() and tidy.bitrate_kbps[~ok].isna().all() and (~ok).sum() == 2
    for name in ("codebook_usage_csv", "codebook_usage_by_depth_csv", "klt_accounting_csv", "klt_spectra_csv"):
        assert pd.read_csv(report.exports[name]).weights.eq(label).all(), name
    table_lines = report.summary_table.splitlines()[1:] + report.speed_table.splitlines()[2:4]
    assert len(table_lines) == 4 and all(line.endswith(label) for line in table_lines)


@pytest.mark.slow  # a codec grid with EnCodec over the test dataset
def test_any_exception_in_a_unit_becomes_failed_rows_and_is_retried(small_dataset, tmp_path, monkeypatch):
    from evalkit.codecs.anchors import LowpassAnchor
    from evalkit.metrics.spectral import MelDistance

    def broken_codec(self, wav, context):
        raise RuntimeError("codec exploded")

    def broken_metric(self, reference, degraded, cache):
        raise ZeroDivisionError("metric exploded")

    raw = make_config(small_dataset, tmp_path / "out", metrics=["si_sdr", "mel_distance_22k"], codecs=[
        {"spec": "lowpass?cutoff_hz=3500"}, {"spec": "encodec-24khz?bandwidth=1.5&weights=random"}])
    raw["dataset"]["max_items"] = 2
    with monkeypatch.context() as patch:
        patch.setattr(LowpassAnchor, "process_array", broken_codec)
        patch.setattr(MelDistance, "compute", broken_metric)
        report = run_raw(raw, tmp_path)
    tidy = pd.read_csv(report.exports["results_csv"]).set_index(["item_id", "family", "metric"]).sort_index()
    assert tidy.loc[("item0.wav", "lowpass"), "reason"].eq("RuntimeError: codec exploded").all()
    assert "cannot decode audio" in tidy.loc[("corrupt.wav", "lowpass", "si_sdr"), "reason"]
    assert tidy.loc[("item0.wav", "encodec-24khz", "mel_distance_22k"), "reason"] == (
        "mel_distance_22k: ZeroDivisionError: metric exploded")
    assert np.isfinite(tidy.loc[("item0.wav", "encodec-24khz", "si_sdr"), "value"])  # the unit's other metric lands
    db = sqlite3.connect(report.store)
    assert dict(db.execute("SELECT item_id || ' ' || family, status FROM units")) == {
        "corrupt.wav lowpass": "failed", "corrupt.wav encodec-24khz": "failed", "item0.wav lowpass": "error",
        "item0.wav encodec-24khz": "ok"}

    retried = run_raw(raw, tmp_path)
    assert retried.units_run == 1  # the unit that raised runs again; bad audio stays failed
    raw["codecs"] = raw["codecs"][:1]
    fresh = run_raw({**raw, "output": str(tmp_path / "fresh")}, tmp_path)
    assert [r for r in export_values(retried) if r[1].startswith("lowpass")] == export_values(fresh)


@pytest.mark.slow  # a codec grid with EnCodec over the test dataset
def test_corrupt_or_empty_cached_files_are_recomputed(small_dataset, tmp_path):
    raw = make_config(small_dataset, tmp_path / "out", codecs=[
        {"spec": "encodec-24khz?bandwidth=1.5&weights=random"}], metrics=["si_sdr"])
    first = run_raw(raw, tmp_path)
    db = sqlite3.connect(first.store)
    out = tmp_path / "out"
    paths = {k: out / v for k, v in db.execute("SELECT item_id, decoded_path FROM units WHERE status = 'ok'")}
    codes = {k: out / v for k, v in db.execute("SELECT item_id, codes_path FROM units WHERE status = 'ok'")}
    open(paths["item0.wav"], "wb").close()  # empty
    with open(codes["item1.wav"], "r+b") as fh:  # torn
        fh.truncate(100)
    again = run_raw(raw, tmp_path)
    assert again.units_run == 2
    assert export_values(again) == export_values(first)
    assert sf.info(paths["item0.wav"]).frames == sf.info(small_dataset / "item0.wav").frames
    with open(paths["item1.wav"], "r+b") as fh:  # torn decoded audio: half the samples
        fh.truncate(fh.seek(0, 2) // 2)
    raw["metrics"] = ["si_sdr", "stoi"]  # rescoring would read the cached audio
    rescored = run_raw(raw, tmp_path)
    assert (rescored.units_run, rescored.units_rescored) == (1, 1)


def test_missing_optional_metric_library_gives_unavailable_rows(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pesq", None)  # `import pesq` raises ImportError
    folder = tmp_path / "long"
    folder.mkdir()
    clip = audio.load(DEMO / "speech_demo-congrats.flac", channel_policy="mono")
    sf.write(folder / "speech.wav", audio.resample(clip.samples[:, :44100], 44100, 16000).T, 16000)  # 1 s
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}],
                      metrics=["si_sdr", "pesq_wb"])
    report = run_raw(raw, tmp_path)
    tidy = pd.read_csv(report.exports["results_csv"]).set_index(["item_id", "metric"])
    assert tidy.loc[("speech.wav", "pesq_wb"), "reason"] == "unavailable: pip install pesq"
    assert np.isfinite(tidy.loc[("speech.wav", "si_sdr"), "value"])


@pytest.mark.slow  # a codec grid with EnCodec over the test dataset
@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-per-file"])
def test_cached_files_are_durable_before_their_row_commits(small_dataset, tmp_path, monkeypatch, syncfs):
    import os

    from evalkit.runner import run as run_module
    from evalkit.runner.store import Store

    events = []
    real_fsync, real_write_units = os.fsync, Store.write_units
    real_syncfs = run_module._SYNCFS

    def fsync(fd):
        events.append(("synced", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def whole_filesystem(fd):  # syncfs flushes every file of the filesystem written so far
        events.append(("synced", "*"))
        return real_syncfs(fd)

    def write_units(self, units):
        units = list(units)
        events.extend(("commit", unit) for unit, _, _ in units)
        return real_write_units(self, units)

    if syncfs and real_syncfs is None:
        pytest.skip("no syncfs(2) on this system")
    monkeypatch.setattr(run_module, "_SYNCFS", whole_filesystem if syncfs else None)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Store, "write_units", write_units)
    real_replace = os.replace

    def replace(src, dst):
        events.append(("renamed", str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    real_write = run_module._write_temporary

    def write_temporary(path, writer):
        events.append(("written", str(path)))
        return real_write(path, writer)

    monkeypatch.setattr(run_module, "_write_temporary", write_temporary)
    raw = make_config(small_dataset, tmp_path / "out", metrics=["si_sdr"], codecs=[
        {"spec": "encodec-24khz?bandwidth=1.5&weights=random"}, {"spec": "lowpass?cutoff_hz=3500"}])
    raw["dataset"]["max_items"] = 2
    run_raw(raw, tmp_path)
    commits = [(i, u) for i, (kind, u) in enumerate(events) if kind == "commit" and u.status == "ok"]
    assert sorted(u.family for _, u in commits) == ["encodec-24khz", "lowpass"]
    for index, unit in commits:
        before = events[:index]
        synced = [path for kind, path in before if kind == "synced"]
        for stored in filter(None, (unit.decoded_path, unit.codes_path)):
            path = str(tmp_path / "out" / stored)
            written, renamed = before.index(("written", path)), before.index(("renamed", path))
            if syncfs:  # the whole filesystem was flushed after the file was written, before it was renamed
                assert ("synced", "*") in before[written:renamed], f"{path} renamed before it was made durable"
            else:
                temporaries = [p for p in synced if os.path.basename(p).startswith(f".{os.path.basename(path)}.")]
                assert temporaries, f"{path} committed before it was fsynced"
            assert os.path.dirname(path) in synced  # the rename itself is durable


def test_bootstrap_ci():
    assert bootstrap_ci(np.full(10, 3.0), seed=0) == (3.0, 3.0)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([1.0]), seed=0))
    values = np.random.default_rng(0).normal(5, 1, 400)
    lo, hi = bootstrap_ci(values, seed=1)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))  # normal-theory CI as an independent check
    assert lo == pytest.approx(values.mean() - half, abs=0.03) and hi == pytest.approx(values.mean() + half, abs=0.03)


@pytest.mark.slow  # a codec grid with EnCodec over the test dataset
def test_klt_grid_exports_accounting_and_spectrum(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", metrics=["si_sdr"], codecs=[
        {"family": "klt", "params": {"base": "encodec-24khz", "bandwidth": 1.5, "weights": "random",
                                     "dim": [64, 128]}}])
    report = run_raw(raw, tmp_path)
    accounting = pd.read_csv(report.exports["klt_accounting_csv"])
    assert sorted(accounting["dim"]) == [64, 128] and set(accounting["full_dim"]) == {128}
    spectra = pd.read_csv(report.exports["klt_spectra_csv"])
    assert len(spectra) == 2 * 128 and spectra.groupby("codec_spec")["cumulative_share"].max().round(9).eq(1).all()


@pytest.mark.slow  # a run with a worker process
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
    assert "7 kHz anchor" in out and "units: 2 planned, 2 run" in out and "store: " in out
    assert "/../" not in out and "next: evalkit summary " in out  # normalised paths, then what to run next
    tidy = pd.read_csv(tmp_path / "out" / "results.csv")
    assert dict(zip(tidy.item_id, tidy.category, strict=True)) == {"data/item0.wav": "speech",
                                                                    "data/item2.wav": "other"}
    assert (tmp_path / "out" / "run.log").is_file()
    assert main(["run", str(path), "--workers", "-1"]) == 2
    assert "--workers: expected an integer >= 0, got -1" in capsys.readouterr().err
    manifest.write_text("path,category\ndata/item0.wav,speech\n")
    assert main(["run", str(path)]) == 2
    assert "dataset.manifest: items.csv has no 'file' column" in capsys.readouterr().err
