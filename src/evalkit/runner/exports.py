"""Exports from the store: tidy long-format results, per-variant summaries with bootstrap CIs, codebook usage.

Exports and printed tables hold exactly the rows of the current plan (its result keys and unit keys); rows left
by earlier configs, metric versions or codec versions stay in the store but are never exported. Labels
(bitrate, weights) come from the plan's variants, and the weights label is in every export and table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evalkit.codecs.records import KLT_FAMILY
from evalkit.metrics import ALL_INFO
from evalkit.metrics.codebook import usage_from_counts
from evalkit.runner.plan import REFERENCE
from evalkit.runner.rate_quality import write_rate_quality
from evalkit.runner.store import Store, resolve_stored, write_exported_plan
from evalkit.stats.bootstrap import mean_ci
from evalkit.stats.shared_items import shared_item_means

if TYPE_CHECKING:
    from evalkit.runner.outcome import Plan

bootstrap_ci = mean_ci  # the one CI of a mean over items (evalkit.stats.bootstrap), under its old name
#: results.csv columns taken from each result's preparation record: column -> field
PREPARATION_COLUMNS = {"metric_rate": "rate", "delay_samples": "delay_samples", "resampler": "resampler",
                       "channels": "channels"}


def _plan_tables(store: Store, plan: Plan) -> None:
    """Temporary tables of this plan's unit keys, result keys and variant labels, to join exports against."""
    db = store.db
    db.executescript("""
        CREATE TEMP TABLE IF NOT EXISTS plan_units (unit_key TEXT PRIMARY KEY, category TEXT);
        CREATE TEMP TABLE IF NOT EXISTS plan_results (result_key TEXT PRIMARY KEY);
        CREATE TEMP TABLE IF NOT EXISTS plan_variants (codec_spec TEXT PRIMARY KEY, weights TEXT, bitrate_kbps REAL);
        DELETE FROM plan_units; DELETE FROM plan_results; DELETE FROM plan_variants;""")
    db.executemany("INSERT OR IGNORE INTO plan_units VALUES (?, ?)", plan.units.items())
    db.executemany("INSERT OR IGNORE INTO plan_results VALUES (?)", [(k,) for k in plan.results])
    db.executemany("INSERT OR IGNORE INTO plan_variants VALUES (?, ?, ?)",
                   [(spec, v.weights, v.bitrate_kbps) for spec, v in plan.variants.items()])


def tidy_results(store: Store, plan: Plan) -> pd.DataFrame:
    """One row per result of this plan (long format); labels and categories from the plan, not old rows."""
    _plan_tables(store, plan)
    return _tidy_results(store)


def _tidy_results(store: Store) -> pd.DataFrame:
    rows = store.query("""
        SELECT u.item_id, pu.category, u.codec_spec, u.family, pv.weights,
               CASE WHEN u.status = 'ok' THEN COALESCE(u.measured_bitrate_bps / 1000.0, pv.bitrate_kbps)
                    END AS bitrate_kbps,  -- a unit the codec did not run on has no bitrate
               pv.bitrate_kbps AS nominal_bitrate_kbps,
               r.metric, r.value, r.unit, r.reason, r.metric_version, r.library, r.library_version,
               r.preparation, r.seconds AS metric_s, u.encode_s, u.decode_s, u.process_s, u.input_seconds, u.device,
               u.status, u.unit_key, r.result_key, u.input_peak_dbfs, u.input_over_full_scale
        FROM results r JOIN plan_results pr ON pr.result_key = r.result_key
             JOIN units u ON u.unit_key = r.unit_key JOIN plan_units pu ON pu.unit_key = u.unit_key
             JOIN plan_variants pv ON pv.codec_spec = u.codec_spec
        ORDER BY u.codec_spec, r.metric, u.item_id""")
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    preparations = [json.loads(s) if isinstance(s, str) else {} for s in frame.pop("preparation")]
    for column, field in PREPARATION_COLUMNS.items():
        frame[column] = pd.Series([p.get(field) for p in preparations], index=frame.index)
    frame["value"] = frame["value"].astype(float)
    frame["bitrate_kbps"] = frame["bitrate_kbps"].astype(float)
    frame["input_peak_dbfs"] = frame["input_peak_dbfs"].astype(float)
    frame["input_over_full_scale"] = frame["input_over_full_scale"].astype("boolean")  # empty: stored before it
    return _with_reference_delta(frame)


def _with_reference_delta(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``reference_value`` (a no-reference metric on the item's reference: the pseudo-variant
    ``reference``) and ``delta`` = value − reference_value; NaN for metrics without reference rows."""
    reference = frame.loc[frame["codec_spec"] == str(REFERENCE.spec), ["item_id", "metric", "value"]]
    reference = reference.drop_duplicates(["item_id", "metric"], keep="last")  # one per item: rows never multiply
    frame = frame.merge(reference.rename(columns={"value": "reference_value"}), on=["item_id", "metric"],
                        how="left")
    frame["delta"] = frame["value"] - frame["reference_value"]
    return frame


def summarize(tidy: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per codec variant × metric: mean, 95 % CI over items (:func:`~evalkit.stats.bootstrap.mean_ci`), n,
    failures; ``bitrate_kbps`` is the variant's mean per-unit bitrate over the units its codec ran on (measured
    where the codec measures it, see ``ReconstructionReport``; units that failed count nowhere, not at the
    nominal rate), the same for every metric; the nominal bitrate and the weights label are the variant's.

    ``mean``, ``ci_*`` and ``n`` are over the variant's own items; ``mean_shared``, ``ci_*_shared`` and
    ``n_shared`` over the items every variant with values of the metric scored, ``n_any`` the items any of them
    scored and ``complete`` whether this variant scored them all (:mod:`evalkit.stats.shared_items`): the
    means to put side by side."""
    rows = []
    units = tidy.drop_duplicates("unit_key")
    bitrates = units["bitrate_kbps"].groupby(units["codec_spec"]).mean()
    # values in item order, as shared_item_means takes them: a variant that scored the shared items gets the same
    # interval for both (resampled once, see mean_ci), not two that differ by the resampling's luck
    by_item = tidy.sort_values("item_id", kind="stable")
    for (spec, metric), group in by_item.groupby(["codec_spec", "metric"], sort=True):
        values = group["value"].dropna().to_numpy()
        lo, hi = mean_ci(values, seed)
        info = ALL_INFO.get(metric)
        rows.append({"codec_spec": spec, "metric": metric, "bitrate_kbps": bitrates[spec],
                     "nominal_bitrate_kbps": group["nominal_bitrate_kbps"].iloc[0],
                     "weights": group["weights"].iloc[0],
                     "mean": float(values.mean()) if len(values) else math.nan, "ci_low": lo, "ci_high": hi,
                     "delta_mean": group["delta"].mean(),  # vs the reference (no-reference metrics), else NaN
                     "n": len(values), "failures": int(group["value"].isna().sum()),
                     "unit": group["unit"].iloc[0], "higher_is_better": info.higher_is_better if info else None})
    shared = shared_item_means(tidy[["item_id", "codec_spec", "metric", "value"]], seed).drop(columns="n_scored")
    return pd.DataFrame(rows).merge(shared, on=["codec_spec", "metric"], how="left")


def codebook_tables(store: Store, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Codebook usage per variant (and vs number of codebooks) over this plan's successful units."""
    _plan_tables(store, plan)
    return _codebook_tables(store, plan)


def _codebook_tables(store: Store, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    units = store.query("""SELECT u.codec_spec, u.codes_path, u.frame_rate, u.cardinality FROM units u
                           JOIN plan_units p ON p.unit_key = u.unit_key
                           WHERE u.status = 'ok' AND u.codes_path IS NOT NULL ORDER BY u.codec_spec""")
    per_codebook, by_depth = [], []
    for u in units:  # relative to the run folder (absolute in stores of older versions)
        u["codes_path"] = resolve_stored(u["codes_path"], store.path.parent)
    for spec in dict.fromkeys(u["codec_spec"] for u in units):
        mine = [u for u in units if u["codec_spec"] == spec and u["codes_path"].is_file()]
        if not mine:
            continue
        cardinality, frame_rate = mine[0]["cardinality"], mine[0]["frame_rate"]
        counts = None
        for u in mine:  # streamed: one codes file at a time
            codes = np.load(u["codes_path"], allow_pickle=False).astype(np.int64)
            flat = codes.transpose(1, 0, 2).reshape(codes.shape[1], -1)
            c = np.stack([np.bincount(row, minlength=cardinality) for row in flat])
            counts = c if counts is None else counts + c
        usage = usage_from_counts(counts, frame_rate)
        weights = plan.variants[spec].weights
        per_codebook += [{"codec_spec": spec, "weights": weights, **s.__dict__} for s in usage.per_codebook]
        by_depth += [{"codec_spec": spec, "weights": weights, **d.__dict__} for d in usage.by_num_codebooks()]
    return pd.DataFrame(per_codebook), pd.DataFrame(by_depth)


def klt_tables(store: Store, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per KLT variant: the storage/complexity accounting, and its eigen-spectrum (for plots)."""
    _plan_tables(store, plan)
    return _klt_tables(store, plan)


def _klt_tables(store: Store, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    klt = [spec for spec, record in plan.records.items() if record.kept_dim is not None]
    rows = store.query("""SELECT v.codec_spec, v.info FROM variants v WHERE v.codec_spec IN (SELECT value FROM
                          json_each(?)) AND v.codec_spec
                          IN (SELECT u.codec_spec FROM units u JOIN plan_units p ON p.unit_key = u.unit_key
                              WHERE u.status = 'ok')
                          ORDER BY v.codec_spec""", (json.dumps(klt),))
    accounting, spectra = [], []
    for row in rows:
        spec, weights = row["codec_spec"], plan.variants[row["codec_spec"]].weights
        info = json.loads(row["info"])[KLT_FAMILY]
        eigenvalues = info.pop("eigenvalues")
        accounting.append({"codec_spec": spec, "weights": weights, **info})
        cumulative = np.cumsum(eigenvalues) / np.sum(eigenvalues)
        spectra += [{"codec_spec": spec, "weights": weights, "index": i + 1, "eigenvalue": v, "cumulative_share": c}
                    for i, (v, c) in enumerate(zip(eigenvalues, cumulative, strict=True))]
    return pd.DataFrame(accounting), pd.DataFrame(spectra)


def speed_table(tidy: pd.DataFrame) -> str:
    """Real-time factors (processing seconds per audio second) per codec and per metric."""
    if tidy.empty:
        return ""
    units = tidy.drop_duplicates("unit_key")
    lines = ["real-time factors (processing seconds per audio second; for units run or rescored in any run)",
             f"{'codec variant':<44} {'encode':>8} {'decode':>8} {'total':>8}  weights"]
    for spec, g in units.groupby("codec_spec"):
        audio_s = g["input_seconds"].sum()
        if g["process_s"].notna().any() and audio_s:
            lines.append(f"{spec:<44} {g['encode_s'].sum() / audio_s:>8.4f} {g['decode_s'].sum() / audio_s:>8.4f} "
                         f"{g['process_s'].sum() / audio_s:>8.4f}  {g['weights'].iloc[0]}")
    lines.append(f"{'metric':<44} {'RTF':>8}")
    audio_per_metric = tidy.groupby("metric")["input_seconds"].sum()
    for metric, seconds in tidy.groupby("metric")["metric_s"].sum().items():
        if audio_per_metric[metric]:
            lines.append(f"{metric:<44} {seconds / audio_per_metric[metric]:>8.4f}")
    return "\n".join(lines)


def format_summary(summary: pd.DataFrame) -> str:
    """The printed summary (also ``summary.txt``): one line per variant × metric, weights label last."""
    if summary.empty:
        return "(no results)"
    lines = [f"{'codec variant':<44} {'kbps':>6} {'metric':<18} {'mean':>9} {'95% CI':>21} {'n':>4} {'fail':>4}"
             f" {'Δ ref':>8}  weights"]
    for r in summary.itertuples():
        kbps = f"{r.bitrate_kbps:.2f}" if pd.notna(r.bitrate_kbps) else "-"
        ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if pd.notna(r.ci_low) else "-"
        delta = f"{r.delta_mean:+.4f}" if pd.notna(r.delta_mean) else "-"
        lines.append(f"{r.codec_spec:<44} {kbps:>6} {r.metric:<18} {r.mean:>9.4f} {ci:>21} {r.n:>4} {r.failures:>4}"
                     f" {delta:>8}  {r.weights}")
    return "\n".join(lines)


FULL_SCALE_NAMED = 5  # items the warning names


def over_full_scale_items(store: Store, plan: Plan) -> list[tuple[str, float]]:
    """(item id, peak in dBFS) of the plan's items with samples beyond full scale, by item id."""
    rows = store.query("""SELECT item_id, MAX(input_peak_dbfs) AS peak FROM units
                          WHERE input_over_full_scale = 1 AND unit_key IN (SELECT value FROM json_each(?))
                          GROUP BY item_id ORDER BY item_id""", (json.dumps(list(plan.units)),))
    return [(r["item_id"], float(r["peak"])) for r in rows]


def over_full_scale_warning(items: list[tuple[str, float]]) -> str:
    """The one warning of a run whose input has samples beyond full scale (names quoted and escaped).

    >>> print(over_full_scale_warning([("a.wav", 10.88), ("b\\n.wav", 0.5)]).split(";")[0])
    2 item(s) exceed full scale (|x| > 1.0, peak up to +10.9 dBFS): 'a.wav', 'b\\n.wav'
    """
    named = ", ".join(repr(item) for item, _ in items[:FULL_SCALE_NAMED])
    more = f" and {len(items) - FULL_SCALE_NAMED} more" if len(items) > FULL_SCALE_NAMED else ""
    return (f"{len(items)} item(s) exceed full scale (|x| > 1.0, peak up to {max(p for _, p in items):+.1f} dBFS): "
            f"{named}{more}; codecs may clip or saturate such input, so their scores include that. evalkit does "
            f"not rescale: see input_over_full_scale and input_peak_dbfs in results.csv")


def write_all(store: Store, plan: Plan, output: Path, seed: int) -> tuple[dict[str, Path], str, str]:
    """Write every export of this plan; returns their paths, the summary table and the speed table."""
    _plan_tables(store, plan)  # once for every query below
    tidy = _tidy_results(store)
    summary = summarize(tidy, seed) if not tidy.empty else pd.DataFrame()
    per_codebook, by_depth = _codebook_tables(store, plan)
    klt_accounting, klt_spectra = _klt_tables(store, plan)
    paths = {
        "results_parquet": output / "results.parquet", "results_csv": output / "results.csv",
        "summary_csv": output / "summary.csv", "summary_parquet": output / "summary.parquet",
        "codebook_usage_csv": output / "codebook_usage.csv",
        "codebook_usage_by_depth_csv": output / "codebook_usage_by_depth.csv",
        "klt_accounting_csv": output / "klt_accounting.csv", "klt_spectra_csv": output / "klt_spectra.csv",
    }
    tidy.to_parquet(paths["results_parquet"], index=False)
    tidy.to_csv(paths["results_csv"], index=False)
    summary.to_csv(paths["summary_csv"], index=False)
    summary.to_parquet(paths["summary_parquet"], index=False)
    per_codebook.to_csv(paths["codebook_usage_csv"], index=False)
    by_depth.to_csv(paths["codebook_usage_by_depth_csv"], index=False)
    klt_accounting.to_csv(paths["klt_accounting_csv"], index=False)
    klt_spectra.to_csv(paths["klt_spectra_csv"], index=False)
    paths["rate_quality_csv"] = write_rate_quality(summary, output, {s: r.curve for s, r in plan.records.items()})
    table = format_summary(summary)
    (output / "summary.txt").write_text(table + "\n")
    paths["exported_plan_json"] = write_exported_plan(output, plan.units)  # last: the exports are complete
    return paths, table, speed_table(tidy)
