"""The report's tables as plain records (lists of dicts, strings formatted here): pure functions of a run's
tables, so the template only lays them out."""

from __future__ import annotations

import math

import pandas as pd

from evalkit.reports.rundata import REFERENCE_SPEC, RunData, is_random_weights
from evalkit.runner.reader import VariantRole

SMALL_N = 5  # fewer items than this: a bootstrap CI over items says little
SPEECH_METRICS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "speaker_similarity", "wer", "cer",
                  "dwer")


def fmt(value, digits: int = 3) -> str:
    """A number for a table cell: ``-`` for missing/NaN, ``digits`` significant decimals otherwise.

    >>> fmt(2.63618), fmt(float("nan")), fmt(None), fmt(1234.5, 1)
    ('2.636', '-', '-', '1234.5')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return "-"
    return f"{float(value):.{digits}f}"


def _kind(run: RunData, spec: str) -> str:
    if spec == REFERENCE_SPEC:
        return "reference"
    return "anchor" if run.role(spec) is VariantRole.ANCHOR else "codec"


def variant_order(run: RunData, bitrates: dict[str, float] | None = None) -> list[str]:
    """Anchors first, then codecs by family and bitrate, the reference pseudo-variant last."""
    summary = run.summary
    if summary.empty:
        return []
    first = summary.drop_duplicates("codec_spec").copy()
    if bitrates is not None:
        first["bitrate_kbps"] = first["codec_spec"].map(bitrates)
    first["family"] = first["codec_spec"].map(lambda s: run.record(s).curve)
    first["rank"] = first["codec_spec"].map(lambda s: {"anchor": 0, "codec": 1, "reference": 2}[_kind(run, s)])
    first = first.sort_values(["rank", "family", "bitrate_kbps", "codec_spec"], na_position="first", kind="stable")
    return list(first["codec_spec"])


def metric_table(run: RunData, metrics: list[str] | None = None, labels: dict[str, str] | None = None) -> dict:
    """Variants × metrics: mean, 95 % CI, n, failures per cell; the best codec value per column marked.

    As on the scoreboard (:func:`~evalkit.reports.scoreboard.scoreboard`), a column's means are over the items
    every variant with values scored, a variant that failed on items others scored is marked (``complete``
    False) and never best, and the best is taken over codec variants with pretrained or trained weights only
    (not the anchors, the reference pseudo-variant or random weights), in each metric's own direction.
    """
    from evalkit.reports.scoreboard import metric_column, scoreboard

    summary = run.summary
    if summary.empty:
        return {"metrics": [], "rows": [], "small_n": False}
    metrics = metrics or run.metrics
    random = run.random_specs
    deltas = {(r.codec_spec, r.metric): r.delta_mean for r in summary.itertuples()}
    board = {r.spec: r for r in scoreboard(run, metrics).rows}
    out_rows, small = [], False
    bitrates = run.bitrates
    for spec in variant_order(run, bitrates):
        row_cells = []
        for metric in metrics:
            cell = board[spec].cells.get(metric) if spec in board else None
            if cell is None:
                row_cells.append(None)
                continue
            small |= 0 < cell.n < SMALL_N
            delta = deltas.get((spec, metric))
            row_cells.append({"mean": fmt(cell.mean), "ci": f"[{fmt(cell.ci_low)}, {fmt(cell.ci_high)}]",
                              "n": cell.n, "failures": cell.failures, "best": cell.best,
                              "complete": cell.complete, "n_scored": cell.n_scored, "n_any": cell.n_any,
                              "mean_all": fmt(cell.mean_all), "small_n": 0 < cell.n < SMALL_N,
                              "delta": fmt(delta) if pd.notna(delta) and spec != REFERENCE_SPEC else None})
        any_row = summary[summary["codec_spec"] == spec].iloc[0]
        out_rows.append({"spec": spec, "label": (labels or {}).get(spec, spec), "kind": _kind(run, spec),
                         "kbps": fmt(bitrates.get(spec), 2),
                         "weights": str(any_row["weights"]), "random": spec in random, "cells": row_cells})
    headers = []
    for metric in metrics:
        c = metric_column(run, metric)
        headers.append({"name": metric, "label": c.label, "unit": c.unit, "arrow": c.arrow})
    return {"metrics": headers, "rows": out_rows, "small_n": small}


def board_records(board) -> dict:
    """The scoreboard (:class:`~evalkit.reports.scoreboard.Scoreboard`) as template records: header texts,
    per cell the shown mean, a sortable value, its CI (``ci``, printed on narrow or touch screens) and the
    CI / n tooltip."""
    columns = [{"name": c.name, "label": c.label, "unit": c.unit, "short_unit": c.short_unit, "arrow": c.arrow,
                "higher": c.higher_is_better, "n_shared": board.n_shared.get(c.name, 0),
                "n_any": board.n_any.get(c.name, 0)} for c in board.columns]
    rows = []
    for index, r in enumerate(board.rows):
        cells = []
        for c in board.columns:
            cell = r.cells.get(c.name)
            if cell is None or math.isnan(cell.mean):
                why = ("not scored" if cell is None else f"every item failed ({cell.failures})" if not cell.n_scored
                       else "no item scored by every variant")
                cells.append({"text": "–", "value": "", "ci": "", "title": why, "best": False, "failures": 0,
                              "complete": True})
                continue
            ci = f"[{fmt(cell.ci_low)}, {fmt(cell.ci_high)}]"
            title = f"95 % CI {ci}, n={cell.n} shared items"
            if not cell.complete:
                title += (f"; scored {cell.n_scored} of the column's {cell.n_any} items ({cell.failures} failed), "
                          f"mean over its own {fmt(cell.mean_all)}: never starred")
            cells.append({"text": fmt(cell.mean), "value": f"{cell.mean:.9g}", "ci": ci, "title": title,
                          "best": cell.best, "failures": cell.failures, "complete": cell.complete,
                          "small_n": 0 < cell.n < SMALL_N})
        rows.append({"index": index, "spec": r.spec, "label": r.label, "group": r.group, "kind": r.kind,
                     "random": r.random, "weights": r.weights, "kbps": fmt(r.kbps, 2),
                     "kbps_value": "" if math.isnan(r.kbps) else f"{r.kbps:.9g}", "cells": cells})
    return {"columns": columns, "rows": rows, "groups": board.groups}


def _label(run: RunData, labels: dict[str, str] | None, spec: str) -> str:
    if labels and spec in labels:
        return labels[spec]
    return run.record(spec).label


def weights_table(run: RunData, labels: dict[str, str] | None = None) -> list[dict]:
    """Every codec variant of the plan with its weights label; skipped ones with their reason."""
    rows, seen = [], set()
    for v in run.provenance.get("variants", []):
        seen.add(v["codec_spec"])
        rows.append({"spec": v["codec_spec"], "label": _label(run, labels, v["codec_spec"]), "weights": v["weights"],
                     "random": is_random_weights(v["weights"]), "skipped": v.get("skipped")})
    for spec, label in run.weights.items():
        if spec not in seen and spec != REFERENCE_SPEC:
            rows.append({"spec": spec, "label": _label(run, labels, spec), "weights": label,
                         "random": is_random_weights(label), "skipped": None})
    return rows


def speed_rows(run: RunData) -> tuple[list[dict], list[dict]]:
    """Real-time factors: per codec (encode, decode, total processing) and per metric, seconds per audio-second."""
    codecs, metrics = [], []
    units = run.units
    if not units.empty:
        ok = units[(units["status"] == "ok") & (units["codec_spec"] != REFERENCE_SPEC)]
        for spec, g in ok.groupby("codec_spec", sort=True):
            audio_s = g["input_seconds"].sum()
            if audio_s and g["process_s"].notna().any():
                codecs.append({"spec": spec, "label": run.label(spec),
                               "encode": fmt(g["encode_s"].sum() / audio_s, 4),
                               "decode": fmt(g["decode_s"].sum() / audio_s, 4),
                               "total": fmt(g["process_s"].sum() / audio_s, 4), "audio_s": fmt(audio_s, 1),
                               "random": spec in run.random_specs})
    results = run.results
    if not results.empty:
        for metric, g in results.groupby("metric", sort=True):
            audio_s = g["input_seconds"].sum()
            if audio_s:
                metrics.append({"metric": metric, "label": _metric_label(metric),
                                "rtf": fmt(g["metric_s"].sum() / audio_s, 4),
                                "audio_s": fmt(audio_s, 1)})
    return codecs, metrics


def _metric_label(metric: str) -> str:
    from evalkit.metrics import ALL_INFO

    return ALL_INFO[metric].label if metric in ALL_INFO else metric


def codebook_rows(run: RunData, labels: dict[str, str] | None = None) -> list[dict]:
    """Per variant with codes: codebooks, mean perplexity and utilisation, entropy bound vs nominal bitrate."""
    rows = []
    usage, depth = run.codebook_usage, run.codebook_by_depth
    if usage.empty:
        return rows
    for spec, g in usage.groupby("codec_spec", sort=True):
        last = depth[depth["codec_spec"] == spec].sort_values("num_codebooks").iloc[-1]
        rows.append({"spec": spec, "label": _label(run, labels, spec), "codebooks": len(g),
                     "perplexity": fmt(g["perplexity"].mean(), 1),
                     "utilisation": fmt(100 * g["utilisation"].mean(), 1),
                     "bound_kbps": fmt(last["bitrate_bound_bps"] / 1000, 2),
                     "nominal_kbps": fmt(last["nominal_bitrate_bps"] / 1000, 2), "random": spec in run.random_specs})
    return rows


KLT_COLUMNS = (("dim", "d̃"), ("full_dim", "D"), ("variance_kept", "variance kept"),
               ("used_codebooks", "codebooks"), ("total_floats_full", "floats (base)"),
               ("total_floats_stored", "floats stored"), ("saving_total_stored", "storage saving"),
               ("search_macs_full", "search MACs (base)"), ("search_macs", "search MACs"),
               ("saving_search", "search saving"))


def klt_rows(run: RunData, labels: dict[str, str] | None = None) -> list[dict]:
    rows = []
    for r in run.klt_accounting.to_dict("records"):
        cells = []
        for key, _ in KLT_COLUMNS:
            value = r.get(key)
            if key.startswith("saving") or key == "variance_kept":
                cells.append(f"{100 * value:.1f} %" if pd.notna(value) else "-")
            else:
                cells.append(str(int(value)) if pd.notna(value) else "-")
        rows.append({"spec": r["codec_spec"], "label": _label(run, labels, r["codec_spec"]), "cells": cells,
                     "random": r["codec_spec"] in run.random_specs})
    return rows


def failure_rows(run: RunData, labels: dict[str, str] | None = None) -> list[dict]:
    """Every unit that did not run (failed, error, skipped) and every NaN result, grouped by reason."""
    rows = []
    if not run.units.empty:
        bad = run.units[run.units["status"] != "ok"]
        for (spec, status, reason), g in bad.groupby(["codec_spec", "status", "reason"], dropna=False, sort=True):
            rows.append({"what": _label(run, labels, spec), "spec": spec, "kind": status, "reason": str(reason),
                         "count": len(g),
                         "item_ids": ", ".join(sorted(g["item_id"])[:5]) + (" …" if len(g) > 5 else "")})
    if not run.results.empty:
        nan = run.results[run.results["value"].isna()]
        for (spec, metric, reason), g in nan.groupby(["codec_spec", "metric", "reason"], dropna=False, sort=True):
            rows.append({"what": f"{_label(run, labels, spec)} · {_metric_label(metric)}", "spec": spec, "kind": "NaN",
                         "reason": str(reason), "count": len(g),
                         "item_ids": ", ".join(sorted(g["item_id"])[:5]) + (" …" if len(g) > 5 else "")})
    return rows


def over_full_scale_rows(run: RunData) -> list[dict]:
    """Items of the run whose input has samples beyond full scale, with their peak in dBFS (by item id); none
    for units stored before the flag existed."""
    units = run.units
    if units.empty or "input_over_full_scale" not in units:
        return []
    hot = units[units["input_over_full_scale"].fillna(0).astype(bool)]
    peaks = hot.groupby("item_id")["input_peak_dbfs"].max()
    return [{"item": item, "peak_dbfs": float(peak)} for item, peak in peaks.items()]
