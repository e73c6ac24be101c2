"""A listening test folder as the report shows it: the analysis (``evalkit listen analyze``'s), the raw ratings
for box plots, and the listening-vs-metric points (per item × condition) with their correlations."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evalkit.reports.rundata import ReportError, RunData
from evalkit.stats.correlation import Correlation, pearson, spearman


@dataclass(frozen=True)
class ListeningData:
    folder: Path
    design: str
    analysis: dict  # mushra_report / choices_report
    ratings: list = field(default_factory=list)  # MUSHRA Rating records
    conditions: dict[str, str] = field(default_factory=dict)  # condition name -> codec spec
    points: pd.DataFrame = field(default_factory=pd.DataFrame)  # item, condition, codec_spec, listening_mean, ...
    correlations: list[dict] = field(default_factory=list)  # per metric: pearson / spearman with CIs


def load_listening(folder: str | Path, run: RunData) -> ListeningData:
    """Analyse a test folder and join its per-item MUSHRA means with the run's metric values.

    Raises:
        ReportError: the folder has no test definition or no ratings yet.
    """
    from evalkit.listening.errors import ListenError
    from evalkit.listening.model import Design, load_definition
    from evalkit.listening.report import analyze_test_dir
    from evalkit.listening.storage import ListeningStore

    folder = Path(folder)
    try:
        definition = load_definition(folder, check_files=False)
        analysis = analyze_test_dir(folder)
    except ListenError as exc:
        raise ReportError(str(exc)) from None
    source = Path(definition.run_dir)
    if source.exists() and source.resolve() != run.run_dir.resolve():
        raise ReportError(f"{folder}: this listening test was prepared from {definition.run_dir}, not from "
                          f"{run.run_dir}; its scores cannot be joined with this run's metrics")
    ratings = []
    if definition.design is Design.MUSHRA:
        excluded = {e["assessor"] for e in analysis.get("excluded", [])}
        with ListeningStore(folder / "listening.sqlite") as store:  # kept assessors, as the means and CIs
            ratings = [r for r in store.ratings() if r.assessor not in excluded]
    points = listening_points(analysis, definition.conditions, run.results)
    return ListeningData(folder, str(definition.design), analysis, ratings, dict(definition.conditions), points,
                         correlations(points))


def listening_points(analysis: dict, conditions: dict[str, str], results: pd.DataFrame) -> pd.DataFrame:
    """One row per (item, condition, metric): the MUSHRA mean over kept assessors and the run's metric value of
    that item through that condition's codec spec (the hidden reference has no spec and is left out)."""
    rows = [{"item": item, "condition": condition, "codec_spec": conditions[condition],
             "listening_mean": summary["mean"]}
            for item, per_condition in analysis.get("items", {}).items()
            for condition, summary in per_condition.items() if condition in conditions]
    if not rows or results.empty:
        return pd.DataFrame(columns=["item", "condition", "codec_spec", "listening_mean", "metric", "metric_value"])
    listening = pd.DataFrame(rows)
    values = results[["item_id", "codec_spec", "metric", "value"]].rename(
        columns={"item_id": "item", "value": "metric_value"})
    return listening.merge(values, on=["item", "codec_spec"], how="inner")


def correlations(points: pd.DataFrame) -> list[dict]:
    """Pearson and Spearman (95 % CIs) between listening means and each metric, over items × conditions."""
    out = []
    for metric, group in points.groupby("metric", sort=True) if not points.empty else []:
        p: Correlation = pearson(group["listening_mean"], group["metric_value"])
        s: Correlation = spearman(group["listening_mean"], group["metric_value"])
        out.append({"metric": metric, "n": p.n, "pearson": p, "spearman": s})
    return out
