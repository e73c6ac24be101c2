"""The scoreboard a researcher reads first, in the report and on the console: one row per codec variant (short
label, measured kbps) and one column per headline metric (display name, unit, direction), mean over items.

Headline metrics are :data:`HEADLINE_METRICS` that the run has, in that order (a run with none of them shows its
first metrics). Rows come anchors first, then codecs by family and bitrate, the reference pseudo-variant last.

The means in a column are over the same items: those every variant with values of the metric scored
(:mod:`evalkit.stats.shared_items`). A variant that failed on items others scored is not ``complete``: it is
marked and never the column's best; its mean over its own items stays in ``mean_all`` (and ``summary.csv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from evalkit.reports.rundata import REFERENCE_SPEC, RunData
from evalkit.runner.reader import VariantRole
from evalkit.stats.shared_items import shared_item_means

HEADLINE_METRICS = ("visqol_audio", "si_sdr", "mel_distance", "pesq_wb", "estoi", "dnsmos_ovrl",
                    "speaker_similarity", "dwer")
FALLBACK_HEADLINE = 4  # a run with no headline metric shows this many of its own


@dataclass(frozen=True)
class MetricColumn:
    """How one metric is shown: ``label`` (display name), full ``unit``, ``short_unit`` (headers; empty when the
    unit is a phrase), direction and the header text ``"SI-SDR (dB) ↑"``."""

    name: str
    label: str
    unit: str
    short_unit: str
    higher_is_better: bool | None

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better is None else "↑" if self.higher_is_better else "↓"

    @property
    def header(self) -> str:
        unit = f" ({self.short_unit})" if self.short_unit else ""
        return f"{self.label}{unit} {self.arrow}".strip()


@dataclass(frozen=True)
class Cell:
    """One variant's mean of one metric over the column's ``n`` shared items (NaN when it has no values or
    nothing is shared), its 95 % CI, its failures; ``n_scored`` items it scored of the column's ``n_any``
    (``complete`` when all), and ``mean_all``, its mean over its own ``n_scored`` items."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    failures: int
    best: bool = False
    n_scored: int = 0
    n_any: int = 0
    complete: bool = True
    mean_all: float = math.nan


@dataclass(frozen=True)
class Row:
    spec: str
    label: str
    group: str  # what the family filter shows: "Opus", "QinCodec", "Anchors", "Reference"...
    kind: str  # anchor, codec or reference
    kbps: float
    weights: str
    random: bool
    cells: dict[str, Cell | None]


@dataclass(frozen=True)
class Scoreboard:
    columns: list[MetricColumn]
    rows: list[Row]
    n_shared: dict[str, int] = field(default_factory=dict)  # per column: the items its means are over
    n_any: dict[str, int] = field(default_factory=dict)  # per column: the items some variant scored

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(r.group for r in self.rows))


def metric_column(run: RunData, metric: str) -> MetricColumn:
    """Display name, unit and direction of a metric: the registry's, else the summary's (a plugin metric)."""
    from evalkit.metrics import ALL_INFO

    info = ALL_INFO.get(metric)
    if info is not None:
        return MetricColumn(metric, info.label, info.unit, info.short_unit, info.higher_is_better)
    rows = run.summary[run.summary["metric"] == metric] if not run.summary.empty else pd.DataFrame()
    unit = str(rows["unit"].dropna().iloc[0]) if not rows.empty and rows["unit"].notna().any() else ""
    hib = rows["higher_is_better"].dropna() if not rows.empty else pd.Series(dtype=object)
    return MetricColumn(metric, metric, unit, unit if " " not in unit else "", bool(hib.iloc[0]) if len(hib)
                        else None)


def headline_metrics(available: list[str]) -> list[str]:
    """The headline metrics among ``available``, in :data:`HEADLINE_METRICS` order; else the first few.

    >>> headline_metrics(["stft_distance", "si_sdr", "mel_distance", "visqol_audio"])
    ['visqol_audio', 'si_sdr', 'mel_distance']
    >>> headline_metrics(["b", "a"])
    ['b', 'a']
    """
    found = [m for m in HEADLINE_METRICS if m in available]
    return found or list(available)[:FALLBACK_HEADLINE]


def kind_of(run: RunData, spec: str) -> str:
    """``anchor`` (low-pass), ``reference`` (the uncoded pseudo-variant) or ``codec``, from its record."""
    if spec == REFERENCE_SPEC:
        return "reference"
    return "anchor" if run.role(spec) is VariantRole.ANCHOR else "codec"


def group_of(run: RunData, spec: str) -> str:
    """The family filter's group of a variant (its record's): its family's display name, ``Anchors`` or
    ``Reference``."""
    return "Reference" if spec == REFERENCE_SPEC else run.record(spec).group


def variant_order(run: RunData) -> list[str]:
    """Anchors first, then codecs by family and measured bitrate, the reference last."""
    if run.summary.empty:
        return []
    bitrates = run.bitrates
    rank = {"anchor": 0, "codec": 1, "reference": 2}

    def key(spec: str):
        kbps = bitrates.get(spec, math.nan)
        return rank[kind_of(run, spec)], group_of(run, spec), math.isnan(kbps), 0.0 if math.isnan(kbps) else kbps, spec

    return sorted(dict.fromkeys(run.summary["codec_spec"]), key=key)


def variant_labels(run: RunData) -> dict[str, str]:
    """Unique short labels of the run's variants ("QinCodec 8 kbps", "3.5 kHz anchor", "Reference"; "QinCodec
    8 kbps/ch" where the run coded stereo items channel by channel)."""
    return run.labels(variant_order(run))


def _with_shared(run: RunData) -> pd.DataFrame:
    """The summary with its shared-item columns (``mean_shared``, ``n_shared``, ``n_any``, ``complete``...),
    computed from the item results for folders exported before ``summary.csv`` had them; without item results
    a variant's own mean stands in, complete when no variant of the metric scored more items."""
    summary = run.summary
    if "mean_shared" in summary:
        return summary
    if run.results.empty:
        n_any = summary.groupby("metric")["n"].transform("max")
        return summary.assign(mean_shared=summary["mean"], ci_low_shared=summary["ci_low"],
                              ci_high_shared=summary["ci_high"], n_shared=summary["n"], n_any=n_any,
                              complete=summary["n"] == n_any)
    seed = int((run.provenance.get("config") or {}).get("seed") or 0)
    shared = shared_item_means(run.results[["item_id", "codec_spec", "metric", "value"]], seed)
    return summary.merge(shared.drop(columns="n_scored"), on=["codec_spec", "metric"], how="left")


def _best(run: RunData, summary: pd.DataFrame, metric: str, random: set[str], higher: bool | None) -> str | None:
    """The best complete codec of a column by its shared-item mean (not anchors, the reference, random weights,
    nor a variant that failed on items others scored)."""
    rows = summary[(summary["metric"] == metric) & summary["mean_shared"].notna()
                   & summary["complete"].fillna(False).astype(bool)]
    rows = rows[rows["codec_spec"].map(lambda s: kind_of(run, s) == "codec" and s not in random)]
    if rows.empty or higher is None:
        return None
    return str(rows.loc[rows["mean_shared"].idxmax() if higher else rows["mean_shared"].idxmin(), "codec_spec"])


def _cell(r, best: bool) -> Cell:
    return Cell(float(r.mean_shared), float(r.ci_low_shared), float(r.ci_high_shared), int(r.n_shared),
                int(r.failures), best, int(r.n), int(r.n_any), bool(r.complete), float(r.mean))


def scoreboard(run: RunData, metrics: list[str] | None = None) -> Scoreboard:
    """Rows per variant × the given metrics (default: the headline ones), each column's means over its shared
    items; the best complete codec per column marked (pretrained or trained codecs only: not anchors, the
    reference or random weights)."""
    if run.summary.empty:
        return Scoreboard([], [])
    summary = _with_shared(run)
    metrics = list(metrics) if metrics is not None else headline_metrics(run.metrics)
    columns = [metric_column(run, m) for m in metrics]
    random = run.random_specs
    best = {c.name: _best(run, summary, c.name, random, c.higher_is_better) for c in columns}
    found = {(r.codec_spec, r.metric): r for r in summary.itertuples()}
    labels, bitrates, weights = variant_labels(run), run.bitrates, run.weights
    rows = []
    for spec in variant_order(run):
        cells: dict[str, Cell | None] = {}
        for c in columns:
            r = found.get((spec, c.name))
            cells[c.name] = None if r is None else _cell(r, best[c.name] == spec)
        rows.append(Row(spec, labels[spec], group_of(run, spec), kind_of(run, spec),
                        float(bitrates.get(spec, math.nan)),
                        str(weights.get(spec, "")), spec in random, cells))
    n_shared, n_any = {}, {}
    for c in columns:
        scored = summary[(summary["metric"] == c.name) & (summary["n"] > 0)]
        n_shared[c.name] = int(scored["n_shared"].min()) if len(scored) else 0
        n_any[c.name] = int(scored["n_any"].max()) if len(scored) else 0
    return Scoreboard(columns, rows, n_shared, n_any)
