"""What ``evalkit run`` ends with and ``evalkit summary`` prints: the wide scoreboard (one row per variant,
headline metric means, fitting 120 columns; more metrics on wider terminals), its JSON, and the long table.
"""

from __future__ import annotations

import math
import os
import shutil
import textwrap
from pathlib import Path

from evalkit.reports.rundata import RunData
from evalkit.reports.scoreboard import Cell, MetricColumn, Scoreboard, headline_metrics, scoreboard

MIN_WIDTH = 120
LABEL_MAX = 42
GAP = 2


def terminal_width(minimum: int = MIN_WIDTH) -> int:
    """The terminal's width, never under ``minimum`` (the table is laid out for at least 120 columns)."""
    return max(minimum, shutil.get_terminal_size((minimum, 24)).columns)


def number(value: float) -> str:
    """A mean as printed: 3 decimals, 1 from 100 up, ``-`` for NaN.

    >>> number(2.63618), number(-12.3456), number(153.26), number(float("nan"))
    ('2.636', '-12.346', '153.3', '-')
    """
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    return number(cell.mean) + ("*" if cell.best else "") + ("" if cell.complete else "!")


def _header(column: MetricColumn, width: int) -> list[str]:
    lines = textwrap.wrap(column.label, width, break_long_words=False) or [column.name]
    return lines + [f"{column.short_unit} {column.arrow}".strip()]


def _width(column: MetricColumn, board: Scoreboard) -> int:
    words = max(len(w) for w in column.label.split()) if column.label.strip() else len(column.name)
    values = max((len(_cell(r.cells.get(column.name))) for r in board.rows), default=1)
    unit = len(f"{column.short_unit} {column.arrow}".strip())
    return max(words, values, unit, min(len(column.label), 12), 5)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def wide_table(board: Scoreboard, width: int = MIN_WIDTH) -> str:
    """The scoreboard as text at most ``width`` columns wide: label, kbps, then the metric columns in order as
    long as they fit; a footer explains the marks and names the metrics left out."""
    if not board.rows:
        return "(no results)"
    label_w = min(LABEL_MAX, max(len("codec variant"), *(len(r.label) for r in board.rows)))
    used = label_w + GAP + 6
    columns: list[tuple[MetricColumn, int]] = []
    left_out: list[str] = []
    for column in board.columns:
        w = _width(column, board)
        if not left_out and used + GAP + w <= width:
            columns.append((column, w))
            used += GAP + w
        else:
            left_out.append(column.name)
    heads = [_header(c, w) for c, w in columns]
    height = max((len(h) for h in heads), default=1)
    lines = []
    for k in range(height):
        last = k == height - 1
        cells = "".join(" " * GAP + f"{([''] * (height - len(h)) + h)[k]:>{w}}" for h, (_, w) in zip(
            heads, columns, strict=True))  # bottom-aligned: the unit line is the last
        lines.append((f"{'codec variant' if last else '':<{label_w}}{'':{GAP}}{'kbps' if last else '':>6}"
                      + cells).rstrip())
    lines.append("-" * used)
    for row in board.rows:
        kbps = "-" if math.isnan(row.kbps) else f"{row.kbps:.2f}"
        cells = "".join(" " * GAP + f"{_cell(row.cells.get(c.name)):>{w}}" for c, w in columns)
        lines.append((f"{_clip(row.label, label_w):<{label_w}}{'':{GAP}}{kbps:>6}" + cells).rstrip())
    notes = ["* best codec per column (not anchors, reference, random weights; only variants that scored every "
             "item) · ! failed on items others scored: never starred · ↑ higher, ↓ lower is better",
             shared_note(board, [c for c, _ in columns]),
             "each variant's own mean, CIs, n and full specs: evalkit summary RUN_DIR --long (or summary.csv)"]
    if left_out:
        notes.append(f"not shown (no room): {', '.join(left_out)}; choose with --metrics NAME ...")
    return "\n".join(lines + [textwrap.fill(n, width) for n in notes])


def shared_note(board: Scoreboard, columns: list[MetricColumn]) -> str:
    """What the means of ``columns`` are over: ``means over the 12 items every variant scored`` when every
    column shares all its items, else each column's shared count of its items (``mel distance 11/12``)."""
    counts = {c.label: (board.n_shared.get(c.name, 0), board.n_any.get(c.name, 0)) for c in columns}
    if not counts:
        return "means over the items every variant in the column scored"
    if len(set(counts.values())) == 1 and all(shared == total for shared, total in counts.values()):
        n = next(iter(counts.values()))[0]
        return f"means over the {n} item{'s' if n != 1 else ''} every variant scored, in every column"
    per_column = ", ".join(f"{label} {shared}/{total}" for label, (shared, total) in counts.items())
    return f"each column's means are over the items every variant in it scored (shared/scored by any): {per_column}"


def run_scoreboard(run: RunData, metrics: list[str] | None = None) -> Scoreboard:
    """The board of ``metrics`` in that order; by default the headline metrics, then the run's others (shown
    as far as the width allows).

    Raises:
        UnknownMetric: a metric the run does not have (the message lists the run's).
    """
    from evalkit.metrics.registry import UnknownMetric

    if metrics is not None:
        unknown = [m for m in metrics if m not in run.metrics]
        if unknown:
            raise UnknownMetric(f"--metrics: {', '.join(unknown)} not in this run; its metrics: "
                                f"{', '.join(run.metrics) or 'none'}")
        return scoreboard(run, list(dict.fromkeys(metrics)))
    head = headline_metrics(run.metrics)
    return scoreboard(run, head + [m for m in run.metrics if m not in head])


def board_json(board: Scoreboard) -> dict:
    """``{"metrics": [{name, label, unit, higher_is_better, n_shared, n_any}], "variants": [{codec_spec, label,
    group, kind, kbps, weights, random, metrics: {name: {mean, ci_low, ci_high, n, failures, best, n_scored,
    complete, mean_all}}}]}``; NaN as null. ``mean`` and its CI are over the column's ``n`` = ``n_shared``
    items; ``mean_all`` over the variant's own ``n_scored``."""
    def num(v: float) -> float | None:
        return None if v is None or math.isnan(v) else float(v)

    return {"metrics": [{"name": c.name, "label": c.label, "unit": c.unit, "higher_is_better": c.higher_is_better,
                         "n_shared": board.n_shared.get(c.name, 0), "n_any": board.n_any.get(c.name, 0)}
                        for c in board.columns],
            "variants": [{"codec_spec": r.spec, "label": r.label, "group": r.group, "kind": r.kind,
                          "kbps": num(r.kbps), "weights": r.weights, "random": r.random,
                          "metrics": {name: None if c is None else {
                              "mean": num(c.mean), "ci_low": num(c.ci_low), "ci_high": num(c.ci_high), "n": c.n,
                              "failures": c.failures, "best": c.best, "n_scored": c.n_scored,
                              "complete": c.complete, "mean_all": num(c.mean_all)} for name, c in r.cells.items()}}
                         for r in board.rows]}


def long_table(run: RunData, metrics: list[str] | None = None) -> str:
    """The long table (one line per variant × metric with CI, n, failures, as ``summary.txt``), restricted to
    ``metrics`` when given, then the real-time factors."""
    from evalkit.runner.exports import format_summary, speed_table

    summary = run.summary
    if metrics is not None and not summary.empty:
        summary = summary[summary["metric"].isin(metrics)]
    speed = speed_table(run.results) if not run.results.empty and "metric_s" in run.results else ""
    return format_summary(summary) + ("\n\n" + speed if speed else "")


def shown_path(path: str | Path) -> str:
    """A path as printed: normalised (no ``configs/../``), relative to the working folder when inside it.

    >>> shown_path("configs/../runs/demo")
    'runs/demo'
    """
    absolute = Path(os.path.normpath(Path(path).absolute()))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
