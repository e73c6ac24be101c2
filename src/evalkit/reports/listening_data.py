"""A listening test folder as the report shows it: the analysis (``evalkit listen analyze``'s), the raw ratings
for box plots, the panel description (questionnaire) and headphone-check results, and the listening-vs-metric
points (per item × condition) with their correlations."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    panel: dict = field(default_factory=dict)  # questionnaire summary over the kept assessors (summarise)
    headphone: list[dict] = field(default_factory=list)  # per participant: assessor, passed, correct, n_trials, ...
    run_dir: str = ""  # the run the test was prepared from


def load_test(folder: str | Path) -> ListeningData:
    """A test folder's analysis, kept MUSHRA ratings, panel description and headphone-check results (no metric
    values: :func:`load_listening` adds them).

    Raises:
        ReportError: the folder has no test definition or no ratings yet.
    """
    from evalkit.listening.analysis.report import analyze_test_dir
    from evalkit.listening.errors import ListenError
    from evalkit.listening.model import Design, load_definition
    from evalkit.listening.questionnaire import all_questions, summarise
    from evalkit.listening.storage import ListeningStore

    folder = Path(folder)
    try:
        definition = load_definition(folder, check_files=False)
        analysis = analyze_test_dir(folder)
    except ListenError as exc:
        raise ReportError(str(exc)) from None
    excluded = {e["assessor"] for e in analysis.get("excluded", [])}
    with ListeningStore(folder / "listening.sqlite") as store:  # kept assessors, as the means and CIs
        records = store.ratings() if definition.design is Design.MUSHRA else store.choices()
        kept = sorted({r.assessor for r in records} - excluded)
        panel = summarise(all_questions(definition.questionnaire), store.questionnaire_answers(), kept)
        headphone = [c | {"analysed": c["assessor"] in kept} for c in store.headphone_checks()]
    ratings = [r for r in records if r.assessor not in excluded] if definition.design is Design.MUSHRA else []
    return ListeningData(folder, str(definition.design), analysis, ratings, dict(definition.conditions),
                         panel=panel, headphone=headphone, run_dir=definition.run_dir)


def load_listening(folder: str | Path, run: RunData) -> ListeningData:
    """Analyse a test folder and join its per-item MUSHRA means with the run's metric values.

    Raises:
        ReportError: the folder has no test definition or no ratings yet, or was prepared from another run.
    """
    data = load_test(folder)
    source = Path(data.run_dir)
    if source.exists() and source.resolve() != run.run_dir.resolve():
        raise ReportError(f"{folder}: this listening test was prepared from {data.run_dir}, not from "
                          f"{run.run_dir}; its scores cannot be joined with this run's metrics")
    points = listening_points(data.analysis, data.conditions, run.results)
    return replace(data, points=points, correlations=correlations(points))


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
