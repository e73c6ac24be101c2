"""The QinCodec recipe's outputs from its main run: the MUSHRA test of Fig. 2 and its analysis, the codebook
perplexity of Fig. 3, and the objective table with its paired tests.

Each function takes the run (:class:`~evalkit.reports.rundata.RunData`) and the variants it is about, and returns
artifacts; a variant the run does not have is simply not drawn (the recipe lists it as unavailable).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from evalkit.recipes import shared
from evalkit.recipes.base import Artifact

log = logging.getLogger("evalkit.recipes.qincodec")

MUSHRA_LISTENERS = 12  # listener slots of the balanced design (`listen prepare`'s default)
TIERS_KBPS = (8.0, 16.0)  # the paper's two bitrates: every codec variant belongs to the nearer one (log scale)


def tier(kbps: float | None) -> float | None:
    """The paper bitrate (8 or 16 kbps) nearest to ``kbps`` on a log scale; None without a bitrate.

    >>> tier(7.75), tier(15.5), tier(8.0), tier(None)
    (8.0, 16.0, 8.0, None)
    """
    if kbps is None or not kbps > 0:
        return None
    return min(TIERS_KBPS, key=lambda t: abs(math.log(kbps / t)))


# --------------------------------------------------------------------------------------------- Fig. 2: MUSHRA


def mushra_test(data, conditions: Sequence[str], folder: Path, flag: str, *, missing: Sequence[str] = (),
                seed: int = 0) -> Artifact | None:
    """The MUSHRA test folder of ``conditions`` (codec specs of the run; `listen prepare` adds the hidden
    reference and the BS.1534-3 anchors, the 3.5 kHz one from the run), ready for ``evalkit listen serve``; a
    folder that already holds this test (a rerun) is kept with its answers. ``missing``: the test's codec
    families the run could not give (named in the title). None (one line logged) when the run cannot give it."""
    from evalkit.listening.errors import ListenError
    from evalkit.listening.model import Design
    from evalkit.listening.prepare.design import PrepareOptions

    if not conditions:
        log.warning("qincodec recipe: MUSHRA test skipped: none of its codec variants ran")
        return None
    options = PrepareOptions(Design.MUSHRA, conditions=tuple(conditions), listeners=MUSHRA_LISTENERS, seed=seed)
    try:
        definition = shared.prepare_listening(data.run_dir, folder, options)
    except ListenError as exc:
        log.warning("qincodec recipe: MUSHRA test skipped: %s", exc)
        return None
    labels = [definition.labels.get(c, c) for c in definition.conditions]
    note = (f"{len(definition.items)} items, {len(definition.slots)} listener slots; conditions: "
            f"{'; '.join(labels)} and the hidden reference (BS.1534-3 also asks for the 7 kHz mid anchor, which "
            f"`listen prepare` adds). Serve: `evalkit listen serve {folder}`; analyse (means, 95 % CIs, mixed-model "
            f"comparisons): `evalkit listen analyze {folder}`; then rerun the same `evalkit reproduce` command to "
            f"draw Fig. 2 from the answers{flag}")
    lacking = f" (without {', '.join(missing)}: unavailable here)" if missing else ""
    return Artifact("fig2_mushra_test", "listening",
                    f"Fig. 2 MUSHRA test: DAC and QinCodec at 8 and 16 kbps{lacking}{flag}", folder, note)


def mushra_results(test_dir: Path | None, figures: Path, flag: str, *, ratings: Path | None = None,
                   source: str = "") -> list[Artifact]:
    """Fig. 2 from the answers: MUSHRA means with 95 % CIs per condition (``listen analyze``'s analysis: only
    assessors who finished, post-screening as BS.1534-3) and the analysis as text beside it; empty while the
    test (``test_dir``, or the ratings CSV ``ratings``: assessor,item,condition,score) has no answers.
    ``source`` says where the answers come from (e.g. simulated)."""
    from evalkit.listening.analysis.panel import select_panel
    from evalkit.listening.analysis.report import format_report, panel_report
    from evalkit.listening.errors import ListenError
    from evalkit.reports.plots import mushra_figure

    try:
        report = panel_report(select_panel(None if ratings else test_dir, ratings))
    except ListenError as exc:
        log.info("qincodec recipe: no MUSHRA answers yet (%s)", exc)
        return []
    fig = mushra_figure(report)
    if fig is not None and flag:
        from evalkit.reports.plots import RANDOM_NOTE

        fig.suptitle(RANDOM_NOTE, color="#D55E00", fontstyle="italic", fontsize=8)
    path = shared.save(fig, figures / "fig2_mushra.png")
    if path is None:
        return []
    text = figures.parent / "tables" / "fig2_mushra_analysis.txt"
    text.parent.mkdir(parents=True, exist_ok=True)
    text.write_text(format_report(report) + "\n", encoding="utf-8")
    text.with_suffix(".json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    where = source or str(ratings or test_dir)
    return [Artifact("fig2_mushra", "figure", f"Fig. 2: MUSHRA scores, mean and 95 % CI{flag}", path,
                     f"{report.get('assessors', '?')} assessors, answers from {where}; the analysis (`listen "
                     f"analyze`'s) in {text.name} and .json beside the tables")]


# ----------------------------------------------------------------------------------------- Fig. 3: perplexity


def deepest_variants(data, families: Sequence[str]) -> dict[str, str]:
    """Family → its variant in the run with the most codebooks in the codebook-usage export (ties: the first
    spec), for the families of ``families`` that have one."""
    usage = data.codebook_usage
    if usage.empty:
        return {}
    depth = usage.groupby("codec_spec")["codebook"].max()
    out: dict[str, tuple[int, str]] = {}
    for spec, deepest in sorted(depth.items()):
        family = data.record(spec).family
        if family in families and (family not in out or deepest > out[family][0]):
            out[family] = (int(deepest), spec)
    return {f: out[f][1] for f in families if f in out}


def perplexity_artifact(data, families: Sequence[str], figures: Path, flag: str) -> Artifact | None:
    """Fig. 3: the perplexity of codebook k against k (k = 1 … N, log y) for the deepest variant of each of
    ``families``; the note names each line and its N. None without codebook usage."""
    from evalkit.reports.plots import perplexity_figure
    from evalkit.reports.plots.options import select_variants

    chosen = deepest_variants(data, families)
    if not chosen:
        return None
    path = shared.save(perplexity_figure(select_variants(data, list(chosen.values()))),
                       figures / "fig3_perplexity.png")
    if path is None:
        return None
    usage = data.codebook_usage
    lines = [f"{data.label(spec)} ({int((usage['codec_spec'] == spec).sum())} codebooks)" for spec in chosen.values()]
    missing = [f for f in families if f not in chosen]
    note = "lines: " + "; ".join(lines) + (f"; not drawn (unavailable): {', '.join(missing)}" if missing else "")
    return Artifact("fig3_perplexity", "figure", f"Fig. 3: codebook perplexity against the codebook index{flag}",
                    path, note)


# ------------------------------------------------------------------------------------------- objective table


def table_variants(data, families: Sequence[str]) -> list[str]:
    """The run's scored anchors, then its scored variants of ``families`` (in the run's order)."""
    from evalkit.runner.reader import VariantRole

    specs = list(dict.fromkeys(data.summary["codec_spec"])) if not data.summary.empty else []
    anchors = [s for s in specs if data.record(s).role is VariantRole.ANCHOR]
    return anchors + [s for s in specs if data.record(s).family in families and s not in anchors]


def paired_pairs(data, specs: Sequence[str], lead: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The pairs the paper's question asks about: codecs of different families at the same paper bitrate, and
    each codec against the low-pass anchor; a variant of a ``lead`` family is the pair's first (``a``)."""
    records = {s: data.record(s) for s in specs}
    codecs = sorted((s for s in specs if records[s].nominal_kbps), key=lambda s: records[s].family not in lead)
    anchors = [s for s in specs if records[s].anchor_cutoff_hz is not None]
    pairs = [(a, b) for i, a in enumerate(codecs) for b in codecs[i + 1:]
             if records[a].family != records[b].family
             and tier(records[a].nominal_kbps) == tier(records[b].nominal_kbps)]
    return pairs + [(c, anchor) for c in codecs for anchor in anchors]


def paired_table(data, specs: Sequence[str], metrics: Sequence[str], lead: Sequence[str] = (),
                 seed: int = 0) -> pd.DataFrame:
    """The paired tests of :func:`paired_pairs` per metric (``evalkit compare --paired``'s: mean difference over
    shared items with its 95 % CI, Wilcoxon p, Holm over every pair of ``specs`` for the metric, verdict)."""
    from evalkit.reports.scoreboard import metric_column
    from evalkit.runner.paired import compare_variants

    values = data.results[["item_id", "codec_spec", "metric", "value"]] if not data.results.empty else None
    wanted = paired_pairs(data, specs, lead)
    rows = []
    for metric in metrics:
        column = metric_column(data, metric)
        if values is None or column.higher_is_better is None:
            continue
        result = compare_variants(values, metric, column.higher_is_better, variants=list(specs), seed=seed)
        by_pair = {frozenset((d.a, d.b)): d for d in result.pairs}
        for a, b in wanted:
            d = by_pair.get(frozenset((a, b)))
            if d is None:
                continue
            sign = 1 if d.a == a else -1
            lo, hi = sorted((sign * d.ci_low, sign * d.ci_high))
            outcome = result.outcome(a, b)
            rows.append({"metric": column.header, "a": data.label(a), "b": data.label(b), "n": d.n,
                         "mean a − b": _num(sign * d.mean_difference), "95 % CI": f"[{_num(lo)}, {_num(hi)}]",
                         "Wilcoxon p": _num(d.p), "Holm p": _num(d.p_holm),
                         "verdict for a": d.reason or (str(outcome) if outcome is not None else "-")})
    return pd.DataFrame(rows)


def _num(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3g}"


def objective_tables(data, specs: Sequence[str], metrics: Sequence[str], tables: Path, flag: str,
                     lead: Sequence[str] = ()) -> list[Artifact]:
    """The objective table (each metric's mean over shared items with its 95 % CI, ``evalkit summary --format``'s
    numbers, as .md, .csv, .tex and .html) and the paired tests of :func:`paired_pairs` (.csv, .md, .html)."""
    from evalkit.reports.paper_table import paper_table, to_csv, uniform_n
    from evalkit.reports.plots.options import select_variants
    from evalkit.reports.scoreboard import scoreboard

    present = [m for m in metrics if m in data.metrics]
    if not specs or not present:
        return []
    board = scoreboard(select_variants(data, specs), present)
    tables.mkdir(parents=True, exist_ok=True)
    for fmt, suffix in (("markdown", ".md"), ("latex", ".tex")):
        (tables / f"objective_table{suffix}").write_text(paper_table(board, fmt), encoding="utf-8")
    (tables / "objective_table.csv").write_text(to_csv(board), encoding="utf-8")
    title = f"Objective metrics at 8 and 16 kbps: mean [95 % CI]{flag}"
    (tables / "objective_table.html").write_text(shared.html_table(_board_frame(board), title), encoding="utf-8")
    n = uniform_n(board)
    out = [Artifact("objective_table", "table", title, tables / "objective_table.html",
                    "also .md, .csv and .tex (`evalkit summary --format`'s numbers); mean over the items every "
                    "variant scored" + (f" (n = {n})" if n is not None else ", n per cell in the .md"))]
    paired = paired_table(data, specs, present, lead)
    if not paired.empty:
        ptitle = f"Paired tests: QinCodec vs DAC at equal bitrate and each codec vs the 3.5 kHz anchor{flag}"
        shared.write_table(paired, tables / "objective_paired", ptitle)
        out.append(Artifact("objective_paired", "table", ptitle, tables / "objective_paired.html",
                            f"per metric, Holm over every pair of the table's {len(specs)} variants; a pair is a win "
                            "when the Holm p is below 0.05 and the CI excludes 0 on the better side"))
    return out


def _board_frame(board) -> pd.DataFrame:
    """The scoreboard as display strings (the report's cells: ``mean [low, high]``)."""
    from evalkit.reports.paper_table import column_header
    from evalkit.reports.tables import board_records

    records = board_records(board)
    headers = [column_header(c) for c in board.columns]
    rows = [{"variant": r["label"] + (" (random weights)" if r["random"] and "random" not in r["label"] else ""),
             "kbps": r["kbps"],
             **{h: f"{c['text']} {c['ci']}".strip() for h, c in zip(headers, r["cells"], strict=True)}}
            for r in records["rows"]]
    return pd.DataFrame(rows)
