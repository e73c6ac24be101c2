"""The report's comparisons as plain records: paired win/tie/loss matrices on the headline metrics (shared
items, paired bootstrap CI, Wilcoxon, Holm; :mod:`evalkit.runner.paired`) and Bjøntegaard deltas against an
anchor family, a flagged delta never shown as a plain number (:mod:`evalkit.stats.bdrate`)."""

from __future__ import annotations

import math

from evalkit.reports.rundata import RunData
from evalkit.reports.scoreboard import Scoreboard, metric_column
from evalkit.runner.reader import curve_name

DEFAULT_ANCHOR = "opus"
SYMBOL = {"win": "▲", "tie": "·", "loss": "▼"}


def _num(value: float, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.{digits}f}"


def paired_context(run: RunData, board: Scoreboard, seed: int = 0) -> dict | None:
    """Per headline metric: the win/tie/loss matrix of every pair of variants (rows against columns, in the
    scoreboard's order) and each variant's wins–ties–losses; None without item-level results."""
    from evalkit.runner.paired import ALPHA, METHOD, compare_variants

    results = run.results
    if results.empty or not board.columns:
        return None
    values = results[["item_id", "codec_spec", "metric", "value"]]
    labels = {r.spec: r.label for r in board.rows}
    order = [r.spec for r in board.rows]
    metrics, records = [], {spec: {} for spec in order}
    for column in board.columns:
        if column.higher_is_better is None:
            continue
        have = set(values.loc[values["metric"] == column.name, "codec_spec"])
        variants = [s for s in order if s in have]
        if len(variants) < 2:
            continue
        result = compare_variants(values, column.name, column.higher_is_better, variants=variants, seed=seed)
        by_pair = {(d.a, d.b): d for d in result.pairs}
        matrix = []
        for i, a in enumerate(variants):
            cells = []
            for b in variants:
                d = by_pair.get((a, b)) or by_pair.get((b, a))
                outcome = None if a == b else result.outcome(a, b)
                if d is None or outcome is None:
                    cells.append({"symbol": "" if a == b else "–", "outcome": "self" if a == b else "none",
                                  "title": "" if a == b else (d.reason if d else "no shared items")})
                    continue
                sign = 1 if d.a == a else -1
                diff, lo, hi = sign * d.mean_difference, *(sorted([sign * d.ci_low, sign * d.ci_high]))
                cells.append({"symbol": SYMBOL[outcome.value], "outcome": outcome.value,
                              "title": f"{labels[a]} − {labels[b]}: {_num(diff)} [{_num(lo)}, {_num(hi)}], "
                                       f"n={d.n}, Wilcoxon p={d.p:.3g}, Holm p={d.p_holm:.3g}: {outcome.value}"})
            matrix.append({"spec": a, "label": labels[a], "index": i + 1, "cells": cells})
        for spec in variants:
            records[spec][column.name] = result.record(spec)
        metrics.append({"name": column.name, "header": column.header, "variants": len(variants),
                        "pairs": len(result.pairs), "matrix": matrix, "note": result.power_note(),
                        "max_items": max((d.n for d in result.pairs), default=0)})
    if not metrics:
        return None
    rows = [{"spec": r.spec, "label": r.label, "random": r.random, "kind": r.kind,
             "cells": [records[r.spec].get(m["name"]) for m in metrics]} for r in board.rows]
    return {"metrics": metrics, "rows": rows, "alpha": ALPHA, "method": METHOD, "note": _power_note(metrics)}


def _power_note(metrics: list[dict]) -> str | None:
    """One line for the metrics whose design cannot detect any difference (too few items for their pairs)."""
    from evalkit.stats.paired import smallest_wilcoxon_p

    blind = [m for m in metrics if m["note"]]
    if not blind:
        return None
    items = max(m["max_items"] for m in blind)
    pairs = sorted({m["pairs"] for m in blind})
    which = "every metric" if len(blind) == len(metrics) else ", ".join(m["header"] for m in blind)
    span = f"{pairs[0]}" if len(pairs) == 1 else f"{pairs[0]}–{pairs[-1]}"
    smallest = smallest_wilcoxon_p(items)
    return (f"With {items} shared items the smallest exact Wilcoxon p is {smallest:.2g}; Holm over {span} "
            f"pairs needs p below {0.05 / pairs[-1]:.2g} for the first: no pair can come out different ({which}), "
            "every pair is a tie by design.")


def _delta_cell(value: float, flags: tuple[str, ...], digits: int, reason: str | None) -> dict:
    if math.isnan(value):
        return {"text": "n/a", "flagged": False, "title": reason or "undefined"}
    text = f"{value:+.{digits}f}"
    return {"text": text, "flagged": bool(flags), "title": "; ".join(flags) if flags else ""}


def bd_context(run: RunData, metrics: list[str]) -> dict | None:
    """BD-rate and BD-quality of every family against the anchor (Opus, else the first family with two
    points), per metric; ``headline``: the BD-rate of each family on the given metrics, one table."""
    from evalkit.runner.compare import compare
    from evalkit.runner.compare_errors import CompareError
    rq = run.rate_quality
    if rq.empty:
        return None
    families = list(dict.fromkeys(rq["family"]))
    counts = rq.groupby("family")["bitrate_kbps"].nunique()
    anchor = DEFAULT_ANCHOR if DEFAULT_ANCHOR in families else next((f for f in families if counts[f] >= 2), None)
    if anchor is None:
        return None

    curve_names = {r.curve: r.curve_name for r in run.reader.records(rq["codec_spec"]).values()}

    def name(family: str) -> str:
        return curve_names.get(family) or curve_name(family)

    tables, by_metric = [], {}
    for metric in sorted(rq["metric"].unique()):
        column = metric_column(run, metric)
        try:
            result = compare(rq, metric, anchor)
        except CompareError as exc:
            tables.append({"metric": metric, "header": column.header, "rows": [], "note": str(exc)})
            continue
        rows = []
        for family, d in result.families.items():
            rate = _delta_cell(d.bd_rate_percent, d.bd_rate_flags, 1, d.reason)
            quality = _delta_cell(d.bd_quality, d.bd_quality_flags, 3, d.reason)
            rows.append({"family": name(family), "points": d.points, "bd_rate": rate, "bd_quality": quality,
                         "note": d.reason or "; ".join(d.flags)})
        by_metric[metric] = dict(zip(result.families, rows, strict=True))
        tables.append({"metric": metric, "header": column.header, "anchor_points": result.anchor_points,
                       "rows": rows, "higher": result.higher_is_better, "note": None})
    shown = [m for m in metrics if m in by_metric]
    family_order = list(dict.fromkeys(f for m in shown for f in by_metric[m]))
    headline = {"metrics": [metric_column(run, m).header for m in shown],
                "rows": [{"family": name(f), "cells": [by_metric[m].get(f, {}).get("bd_rate") for m in shown]}
                         for f in family_order]}
    return {"anchor": name(anchor), "tables": tables, "headline": headline,
            "flagged": any(c and c["flagged"] for r in headline["rows"] for c in r["cells"])
            or any(r["bd_rate"]["flagged"] or r["bd_quality"]["flagged"] for t in tables for r in t["rows"])}


def paired_comparison(run_dir, metric: str, seed: int | None = None):
    """``evalkit compare --paired``: every pair of a run's variants on ``metric`` over their shared items, and
    each variant's label, as ``(PairedComparison, {spec: label})``. ``seed`` defaults to the run's own.

    Raises:
        ReportError: not a run folder.
        CompareError: ``metric`` is not in the run, or has no direction (higher or lower is better).
    """
    from evalkit.reports.rundata import load_run
    from evalkit.reports.scoreboard import variant_labels, variant_order
    from evalkit.runner.compare_errors import CompareError
    from evalkit.runner.paired import compare_variants

    run = load_run(run_dir)
    if metric not in run.metrics:
        raise CompareError(f"metric {metric!r} is not in this run; its metrics: {', '.join(run.metrics) or 'none'}")
    column = metric_column(run, metric)
    if column.higher_is_better is None:
        raise CompareError(f"metric {metric!r} has no direction (higher or lower is better): no verdicts")
    if seed is None:
        seed = int((run.provenance.get("config") or {}).get("seed") or 0)
    result = compare_variants(run.results, metric, column.higher_is_better, variants=variant_order(run), seed=seed)
    return result, variant_labels(run)
