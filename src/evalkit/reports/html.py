"""``evalkit report``: one self-contained HTML file from a run folder (and optionally a listening test).

Figures are inline SVG (matplotlib, text as paths where fonts could differ), audio excerpts inline Opus data
URIs, CSS and one small script (scoreboard sorting and family filter) inline: the file makes no request when
opened. The scoreboard comes first, details are collapsed, provenance last; sections appear only when their data
exist.
"""

from __future__ import annotations

import datetime as _dt
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

import evalkit
from evalkit.reports import tables
from evalkit.reports.rundata import ReportError, RunData, load_run

if TYPE_CHECKING:
    from markupsafe import Markup

TEMPLATE = "report.html.j2"


def _klt_metrics(run: RunData) -> list[str]:
    if run.klt_accounting.empty:
        return []
    klt = run.summary["codec_spec"].map(lambda s: run.record(s).kept_dim is not None)
    return [m for m in run.metrics if m in set(run.summary[klt]["metric"])]


def _spec_html(spec: str) -> Markup:
    """A codec spec as HTML with break opportunities after ``?`` and ``&`` (no word is cut mid-way)."""
    from markupsafe import Markup, escape

    return Markup("<wbr>".join(escape(part) for part in spec.replace("?", "?\0").replace("&", "&\0").split("\0")))


def build_context(run: RunData, listening=None, *, examples: int = 3, excerpt_s: float = 5.0) -> dict:
    """Everything the template shows, computed from the run (and listening) tables."""
    from evalkit.reports import plots
    from evalkit.reports.audio_examples import OPUS_KBPS_PER_CHANNEL, audio_examples
    from evalkit.reports.comparisons import bd_context, paired_context
    from evalkit.reports.figures import figure, grid
    from evalkit.reports.listening_section import listening_context
    from evalkit.reports.scoreboard import metric_column, scoreboard, variant_labels

    prov = run.provenance
    board = scoreboard(run)
    headline = [c.name for c in board.columns]
    others = [m for m in run.metrics if m not in headline]
    rq_metrics = sorted(run.rate_quality["metric"].unique()) if not run.rate_quality.empty else []
    labels = variant_labels(run)
    codec_speed, metric_speed = tables.speed_rows(run)
    header = {m: metric_column(run, m).header for m in run.metrics}
    ctx = {
        "title": f"evalkit report: {run.run_dir.name}",
        "run_dir": str(run.run_dir.resolve()),
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "evalkit": evalkit.__version__,
        "report_machine": f"{platform.node()} ({platform.platform()}, Python {platform.python_version()})",
        "provenance": prov,
        "config_yaml": yaml.safe_dump(prov["config"], sort_keys=False) if prov.get("config") else None,
        "libraries": prov.get("libraries", {}),
        "weights": tables.weights_table(run, labels),
        "random_specs": sorted(run.random_specs),
        "board": tables.board_records(board),
        "metric_table": tables.metric_table(run, labels=labels),
        "small_n": tables.SMALL_N,
        "speech": [m for m in tables.SPEECH_METRICS if m in run.metrics],
        "headline_grid": grid(run, headline, plots.metric_figure, shared_legend=False,
                              caption="Mean of each headline metric with its 95 % bootstrap CI over items, per "
                                      "variant: anchors first, then codecs by family and bitrate.",
                              alt=lambda m: f"{header[m]}: mean and 95 % CI per variant"),
        "rq_grid": grid(run, [m for m in headline if m in rq_metrics], plots.rate_quality_figure,
                        shared_legend=True,
                        caption="Headline metrics against the measured bitrate (log axis), one line per codec "
                                "family with 95 % CI bars; anchors and the uncoded reference as horizontal lines.",
                        alt=lambda m: f"{header[m]} against measured bitrate, one line per codec family"),
        "more_figures": [f for m in others if (f := figure(plots.metric_figure, run, m,
                                                            alt=f"{header[m]}: mean and 95 % CI per variant"))]
                        + [f for m in rq_metrics if m not in headline and (f := figure(
                            plots.rate_quality_figure, run, m, alt=f"{header[m]} against measured bitrate, one "
                                                                   "line per codec family"))],
        "bd": bd_context(run, headline),
        "paired": paired_context(run, board, seed=int((prov.get("config") or {}).get("seed") or 0)),
        "perplexity": figure(plots.perplexity_figure, run, alt="Perplexity of each codebook against its index "
                                                                 "(RVQ stage), every codec with codes"),
        "codebook_usage": figure(plots.codebook_usage_figure, run, alt="Per-codebook perplexity and utilisation"),
        "codebook_rows": tables.codebook_rows(run, labels),
        "klt_rows": tables.klt_rows(run, labels), "klt_columns": [label for _, label in tables.KLT_COLUMNS],
        "klt_spectrum": figure(plots.klt_spectrum_figure, run, alt="KLT eigen-spectra and variance kept against "
                                                                     "the kept dimension"),
        "klt_metric_figures": [f for m in _klt_metrics(run) if (f := figure(
            plots.klt_metric_figure, run, m, alt=f"{header[m]} against the kept KLT dimension"))],
        "codec_speed": codec_speed, "metric_speed": metric_speed,
        "warmup": prov.get("warmup_s") or {},
        "failures": tables.failure_rows(run, labels),
        "over_full_scale": tables.over_full_scale_rows(run),
        "listening": listening_context(listening) if listening is not None else None,
        "examples": audio_examples(run, examples, excerpt_s) if examples else [],
        "labels": labels,
        "opus_kbps": OPUS_KBPS_PER_CHANNEL,
    }
    return ctx


def render(ctx: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("evalkit.reports", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["spec"] = _spec_html
    return env.get_template(TEMPLATE).render(**ctx)


def write_report(run_dir: str | Path, listening_dir: str | Path | None = None, out: str | Path | None = None,
                 *, examples: int = 3, excerpt_s: float = 5.0) -> Path:
    """Write the report of ``run_dir`` (default ``RUN_DIR/report.html``); returns its path.

    Raises:
        ReportError: an unreadable run or listening folder, or an output that cannot be written.
    """
    run = load_run(run_dir)
    listening = None
    if listening_dir is not None:
        from evalkit.reports.listening_data import load_listening

        listening = load_listening(listening_dir, run)
    html = render(build_context(run, listening, examples=examples, excerpt_s=excerpt_s))
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise ReportError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out
