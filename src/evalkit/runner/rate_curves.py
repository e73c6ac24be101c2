"""Rate–quality points of a run: one row per family × bitrate point × metric (``rate_quality.csv``).

A *family* is a curve for Bjøntegaard comparisons, given per codec spec by the caller (the run's variant records,
:attr:`evalkit.codecs.records.VariantRecord.curve`: the codec family's name, except that KLT variants form one
family per base codec and kept dimension, decoded folders one per declared ``family``, and non-default
settings a curve of their own). A *point* is one codec variant: its bitrate is the mean over items of the
per-unit bitrate (measured where the codec measures it), its quality the mean of the metric over items with the
95 % bootstrap CI of the run's summary.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

COLUMNS = ["family", "codec_spec", "bitrate_kbps", "nominal_bitrate_kbps", "metric", "mean", "ci_low", "ci_high",
           "n", "failures", "unit", "higher_is_better"]


def rate_quality_table(summary: pd.DataFrame, curves: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rate–quality rows from a run summary (per variant × metric), for variants that have a bitrate.

    Args:
        curves: codec spec → its rate–quality curve (a spec missing from it is a curve of its own).
        summary: the run's summary table with ``codec_spec``, ``metric``, ``bitrate_kbps`` (mean per-unit
            bitrate, measured where available), ``nominal_bitrate_kbps``, ``mean``, ``ci_low``, ``ci_high``,
            ``n``, ``failures``, ``unit`` and ``higher_is_better``.

    Returns:
        ``COLUMNS``, sorted by family, metric and bitrate; transforms without a bitrate (anchors) are left out.
    """
    if summary.empty or "bitrate_kbps" not in summary:
        return pd.DataFrame(columns=COLUMNS)
    rows = summary[summary["bitrate_kbps"].notna()].copy()
    rows["family"] = rows["codec_spec"].map(lambda spec: (curves or {}).get(spec, spec))
    if "nominal_bitrate_kbps" not in rows:
        rows["nominal_bitrate_kbps"] = rows["bitrate_kbps"]
    return rows[COLUMNS].sort_values(["family", "metric", "bitrate_kbps"], kind="stable").reset_index(drop=True)
