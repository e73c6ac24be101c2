"""Exports, report data and bitrates describe one plan; a moved run folder is reused as it is."""

import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest

from evalkit.runner import RunInterrupted
from tests.runner.conftest import export_values, make_config, run_raw


def test_after_a_killed_rerun_with_another_config_report_units_match_the_exports(small_dataset, tmp_path,
                                                                                  monkeypatch):
    from evalkit.reports.rundata import load_run
    from evalkit.runner import run as run_module

    out = tmp_path / "out"
    first = [{"spec": "lowpass?cutoff_hz=3500"}, {"spec": "lowpass?cutoff_hz=7000"}]
    run_raw(make_config(small_dataset, out, codecs=first, metrics=["si_sdr"]), tmp_path)

    real = run_module.run_local

    def killed(tasks, workers, on_outcome, log_path=None, **kwargs):  # Ctrl-C (or SIGKILL) after one unit
        def first_then_stop(outcomes):
            on_outcome(outcomes)
            raise KeyboardInterrupt
        real(tasks, workers, first_then_stop, log_path, **kwargs)

    monkeypatch.setattr(run_module, "run_local", killed)
    with pytest.raises(RunInterrupted):
        run_raw(make_config(small_dataset, out, codecs=[{"spec": "opus?bitrate_kbps=6"}], metrics=["si_sdr"]),
                tmp_path)
    current = sqlite3.connect(out / "results.sqlite").execute(
        "SELECT DISTINCT codec_spec FROM units JOIN current_plan USING (unit_key)").fetchall()
    assert current == [("opus?application=audio&bitrate_kbps=6",)]  # the store's latest plan is the killed one

    run = load_run(out)
    specs = {"lowpass?cutoff_hz=3500", "lowpass?cutoff_hz=7000"}
    assert set(run.summary["codec_spec"]) == specs
    assert set(run.units["codec_spec"]) == specs  # speed, failures and audio sections: the same plan
    assert len(run.units) == 6


@pytest.mark.slow  # repeated codec runs
def test_summary_bitrate_is_the_mean_over_units_the_codec_ran_on(small_dataset, tmp_path):
    report = run_raw(make_config(small_dataset, tmp_path / "out", codecs=[{"spec": "opus?bitrate_kbps=6"}],
                                 metrics=["si_sdr", "mel_distance_22k"]), tmp_path)
    units = pd.DataFrame(sqlite3.connect(report.store).execute(
        "SELECT status, measured_bitrate_bps FROM units").fetchall(), columns=["status", "bps"])
    assert sorted(units["status"]) == ["failed", "ok", "ok"]  # corrupt.wav fails before the codec runs
    measured = units.loc[units["status"] == "ok", "bps"].mean() / 1000
    assert abs(measured - 6.0) > 0.05  # Opus's real rate differs from nominal: counting the failure would show
    summary = pd.read_csv(report.exports["summary_csv"])
    assert summary["bitrate_kbps"].to_numpy() == pytest.approx([measured, measured], rel=1e-9)
    assert summary["nominal_bitrate_kbps"].tolist() == [6.0, 6.0]
    tidy = pd.read_csv(report.exports["results_csv"])
    assert tidy.loc[tidy["status"] != "ok", "bitrate_kbps"].isna().all()


CODES_AND_ANCHOR = [{"spec": "encodec-24khz?bandwidth=1.5&weights=random"}, {"spec": "lowpass?cutoff_hz=3500"}]


@pytest.mark.slow  # repeated codec runs
@pytest.mark.parametrize("absolute", [False, True])
def test_a_moved_run_folder_recomputes_nothing(small_dataset, tmp_path, absolute):
    old, new = tmp_path / "old" / "run", tmp_path / "new" / "run"
    first = run_raw(make_config(small_dataset, old, codecs=CODES_AND_ANCHOR, metrics=["si_sdr"]), tmp_path)
    db = sqlite3.connect(first.store)
    stored = [p for row in db.execute("SELECT decoded_path, codes_path FROM units") for p in row if p]
    assert stored and all(p.startswith("cache/") for p in stored)  # relative to the run folder
    if absolute:  # as versions before this one stored them
        with db:
            for column in ("decoded_path", "codes_path"):
                db.execute(f"UPDATE units SET {column} = ? || '/' || {column} WHERE {column} IS NOT NULL",
                           (str(old),))
    db.close()
    usage = pd.read_csv(first.exports["codebook_usage_csv"])
    before = export_values(first)
    new.parent.mkdir()
    shutil.move(old, new)
    again = run_raw(make_config(small_dataset, new, codecs=CODES_AND_ANCHOR, metrics=["si_sdr", "stoi"]), tmp_path)
    assert (again.units_run, again.units_rescored) == (0, 4)  # a new metric: rescored from the moved cache
    assert [r for r in export_values(again) if r[2] == "si_sdr"] == before
    pd.testing.assert_frame_equal(pd.read_csv(again.exports["codebook_usage_csv"]), usage)  # codes were found
    np.testing.assert_equal(len(list((new / "cache" / "decoded").glob("*.wav"))), 4)


def test_a_variant_that_scored_every_item_has_one_interval_for_its_own_and_its_shared_mean():
    """Its own items are the shared items: the two CIs of summary.csv are the same numbers, whatever order the
    rows come in (two resamplings of the same values would differ by chance)."""
    from evalkit.runner.exports import summarize
    from evalkit.stats.bootstrap import mean_ci

    items = [f"i{k:02d}" for k in range(12)]
    rng = np.random.default_rng(4)
    rows = []
    for spec, order in (("a", items[::-1]), ("b", items)):  # a's rows arrive in reverse item order
        for item in order:
            rows.append({"item_id": item, "unit_key": f"{spec}{item}", "codec_spec": spec, "metric": "si_sdr",
                         "value": float(rng.normal(10, 3)), "bitrate_kbps": 6.0, "nominal_bitrate_kbps": 6.0,
                         "weights": "none", "delta": np.nan, "unit": "dB"})
    tidy = pd.DataFrame(rows)
    summary = summarize(tidy, seed=0).set_index("codec_spec")
    for spec in ("a", "b"):
        row = summary.loc[spec]
        assert (row["ci_low"], row["ci_high"]) == (row["ci_low_shared"], row["ci_high_shared"])
        by_item = tidy[tidy["codec_spec"] == spec].sort_values("item_id")["value"].to_numpy()
        assert (row["ci_low"], row["ci_high"]) == mean_ci(by_item, 0)
