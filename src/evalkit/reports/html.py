"""``evalkit report``: one self-contained HTML file from a run folder (and optionally a listening test).

Figures are inline SVG (matplotlib, text as paths where fonts could differ), audio excerpts inline Opus data
URIs, CSS inline: the file makes no request when opened. Sections appear only when their data exist.
"""

from __future__ import annotations

import datetime as _dt
import platform
from pathlib import Path

import yaml

import evalkit
from evalkit.reports import tables
from evalkit.reports.rundata import ANCHOR_FAMILY, ReportError, RunData, load_run

TEMPLATE = "report.html.j2"
DEFAULT_ANCHOR = "opus"


def _figure(make, *args, alt: str) -> dict | None:
    """Render one figure to inline SVG with its alt text; None when there is nothing to plot."""
    from evalkit.reports import plots

    fig = make(*args)
    return None if fig is None else {"svg": plots.figure_svg(fig), "alt": alt}


def _bd_tables(run: RunData) -> list[dict]:
    from evalkit.analysis.compare import compare
    from evalkit.analysis.errors import CompareError

    rq = run.rate_quality
    if rq.empty:
        return []
    families = list(dict.fromkeys(rq["family"]))
    anchor = DEFAULT_ANCHOR if DEFAULT_ANCHOR in families else None
    if anchor is None:
        counts = rq.groupby("family")["bitrate_kbps"].nunique()
        anchor = next((f for f in families if counts[f] >= 2), None)
    if anchor is None:
        return []
    out = []
    for metric in sorted(rq["metric"].unique()):
        try:
            result = compare(rq, metric, anchor)
        except CompareError as exc:
            out.append({"metric": metric, "anchor": anchor, "rows": [], "note": str(exc)})
            continue
        rows = [{"family": f, "bd_rate": tables.fmt(d.bd_rate_percent, 1), "bd_quality": tables.fmt(d.bd_quality),
                 "points": d.points, "reason": d.reason or ""} for f, d in result.families.items()]
        out.append({"metric": metric, "anchor": anchor, "anchor_points": result.anchor_points, "rows": rows,
                    "higher": result.higher_is_better, "note": None})
    return out


def _klt_metrics(run: RunData) -> list[str]:
    if run.klt_accounting.empty:
        return []
    return [m for m in run.metrics if m in set(run.summary[run.summary["codec_spec"].str.startswith("klt?")]
                                                  ["metric"])]


def build_context(run: RunData, listening=None, *, examples: int = 3, excerpt_s: float = 5.0) -> dict:
    """Everything the template shows, computed from the run (and listening) tables."""
    from evalkit.reports import plots
    from evalkit.reports.audio_examples import OPUS_KBPS_PER_CHANNEL, audio_examples

    prov = run.provenance
    random_specs = sorted(run.random_specs)
    metric_table = tables.metric_table(run)
    rq_metrics = sorted(run.rate_quality["metric"].unique()) if not run.rate_quality.empty else []
    speech = [m for m in tables.SPEECH_METRICS if m in run.metrics]
    codec_speed, metric_speed = tables.speed_rows(run)
    ctx = {
        "title": f"evalkit report: {run.run_dir.name}",
        "run_dir": str(run.run_dir.resolve()),
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "evalkit": evalkit.__version__,
        "report_machine": f"{platform.node()} ({platform.platform()}, Python {platform.python_version()})",
        "provenance": prov,
        "config_yaml": yaml.safe_dump(prov["config"], sort_keys=False) if prov.get("config") else None,
        "libraries": prov.get("libraries", {}),
        "weights": tables.weights_table(run),
        "random_specs": random_specs,
        "metric_table": metric_table,
        "small_n": tables.SMALL_N,
        "metric_figures": [f for m in run.metrics
                           if (f := _figure(plots.metric_figure, run, m, alt=f"{m}: mean and 95 % CI per variant"))],
        "rate_quality": [f for m in rq_metrics if (f := _figure(
            plots.rate_quality_figure, run, m, alt=f"{m} against measured bitrate, one line per codec family, "
                                                   f"{ANCHOR_FAMILY} anchors as horizontal lines"))],
        "bd_tables": _bd_tables(run),
        "perplexity": _figure(plots.perplexity_figure, run, alt="perplexity of each codebook against its index "
                                                                  "(number of codebooks used), every codec with "
                                                                  "codes"),
        "codebook_usage": _figure(plots.codebook_usage_figure, run, alt="per-codebook perplexity and utilisation"),
        "codebook_rows": tables.codebook_rows(run),
        "klt_rows": tables.klt_rows(run), "klt_columns": [label for _, label in tables.KLT_COLUMNS],
        "klt_spectrum": _figure(plots.klt_spectrum_figure, run, alt="KLT eigen-spectra and variance kept against "
                                                                      "the kept dimension"),
        "klt_metric_figures": [f for m in _klt_metrics(run) if (f := _figure(
            plots.klt_metric_figure, run, m, alt=f"{m} against the kept KLT dimension"))],
        "speech_table": tables.metric_table(run, speech) if speech else None,
        "codec_speed": codec_speed, "metric_speed": metric_speed,
        "warmup": prov.get("warmup_s") or {},
        "failures": tables.failure_rows(run),
        "listening": _listening_context(listening) if listening is not None else None,
        "examples": audio_examples(run, examples, excerpt_s) if examples else [],
        "opus_kbps": OPUS_KBPS_PER_CHANNEL,
    }
    return ctx


def _listening_context(data) -> dict:
    from evalkit.reports import plots

    analysis = data.analysis
    ctx = {"folder": str(data.folder), "design": data.design, "analysis": analysis, "figures": [],
           "correlations": [], "conditions": data.conditions}
    if data.design == "mushra":
        ctx["figures"] = [f for f in (
            _figure(plots.mushra_figure, analysis, alt="MUSHRA mean score with 95 % CI per condition"),
            _figure(plots.mushra_items_figure, analysis, alt="MUSHRA mean score with 95 % CI per item and condition"),
            _figure(plots.mushra_box_figure, data.ratings, alt="MUSHRA score distribution per condition"))
            if f]
        for c in data.correlations:
            p, s = c["pearson"], c["spearman"]
            ctx["correlations"].append({
                "metric": c["metric"], "n": c["n"],
                "pearson": tables.fmt(p.value), "pearson_ci": f"[{tables.fmt(p.ci_low)}, {tables.fmt(p.ci_high)}]",
                "spearman": tables.fmt(s.value),
                "spearman_ci": f"[{tables.fmt(s.ci_low)}, {tables.fmt(s.ci_high)}]",
                "reason": p.reason or s.reason or ""})
            if not data.points.empty:
                from evalkit.metrics import ALL_INFO

                points = data.points[data.points["metric"] == c["metric"]]
                unit = ALL_INFO[c["metric"]].unit if c["metric"] in ALL_INFO else ""
                fig = _figure(plots.correlation_figure, points, c["metric"], unit,
                              alt=f"MUSHRA mean per item and condition against {c['metric']}")
                if fig:
                    ctx["figures"].append(fig)
    else:
        ctx["figures"] = [f for f in [_figure(plots.ab_figure, analysis, alt=f"{data.design.upper()} results with "
                                                                              f"95 % Wilson intervals")] if f]
    return ctx


def render(ctx: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("evalkit.reports", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
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
