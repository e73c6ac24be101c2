"""The report's listening-test section as plain records: conditions by their short labels ("Opus 12 kbps",
"3.5 kHz anchor", "Reference"), full specs on hover, scores and CIs on the 0–100 scale (a Student-t bound past
the scale is shown at the scale's end and marked), paired comparisons with their CIs when the analysis has them,
excluded or incomplete assessors with reasons, the minimum detectable difference beside the MUSHRA means, and the
listening behaviour (server-timed median time on trial and share of stimuli played fully, per assessor and
condition; trials left out by ``--min-played``). ACR, DCR and BS.1116 tests show their MOS, DMOS or mean
difference grade per condition with both intervals.
"""

from __future__ import annotations

import math
from pathlib import Path

from evalkit.listening.analysis.text import choice_columns, format_p
from evalkit.reports.tables import fmt

SCALE = (0.0, 100.0)


def _score(value, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def clamp_ci(low, high) -> tuple[str, bool]:
    """A MUSHRA CI as shown: ``[a, b]`` inside 0–100, and whether a bound had to be clamped to the scale.

    >>> clamp_ci(91.3, 104.2), clamp_ci(None, None)
    (('[91.3, 100.0]', True), ('-', False))
    """
    if low is None or high is None:
        return "-", False
    lo, hi = max(SCALE[0], float(low)), min(SCALE[1], float(high))
    return f"[{lo:.1f}, {hi:.1f}]", (lo, hi) != (float(low), float(high))


def _label(name: str, conditions: dict[str, str], labels: dict[str, str] | None = None) -> tuple[str, str]:
    """(label, full spec or name) of a listening condition: the test's own label (``labels``, from
    ``test.json``: per-channel rates marked when prepared from a run), else its short label."""
    from evalkit.reports.plots.style import short_label

    spec = conditions.get(name, name)
    label = (labels or {}).get(name) or (short_label(spec) if name in conditions else short_label(name))
    return label, spec if name in conditions else ("hidden reference" if name == "reference" else name)


def _assessor_rows(analysis: dict) -> list[dict]:
    """One row per assessor left out or unfinished: an unfinished assessor who is also excluded is listed once,
    as excluded (the exclusion's reason says "unfinished")."""
    rows: dict[str, dict] = {}
    for e in analysis.get("excluded") or []:
        who = e.get("assessor", "?")
        row = rows.setdefault(who, {"assessor": who, "status": "excluded", "reasons": []})
        row["reasons"].append(e.get("reason", ""))
    for key in ("incomplete", "incomplete_assessors"):
        for e in analysis.get(key) or []:
            who = e.get("assessor", "?") if isinstance(e, dict) else None
            if who is None or who in rows:
                continue
            reason = e.get("reason") or (f"{e['done']} of {e['trials']} trials done" if "done" in e else "")
            rows[who] = {"assessor": who, "status": "incomplete, included" if e.get("included") else "incomplete",
                         "reasons": [reason]}
    return [{"assessor": r["assessor"], "status": r["status"], "reason": "; ".join(x for x in r["reasons"] if x)}
            for r in rows.values()]


def _mdd(analysis: dict) -> dict | None:
    found = analysis.get("minimum_detectable_difference")
    if not isinstance(found, dict) or found.get("points") is None:
        return None
    return {"points": _score(found.get("points")), "power": found.get("power"), "alpha": found.get("alpha"),
            "assessors": found.get("assessors"), "pairs": found.get("pairs"), "method": found.get("method", "")}


def behaviour_context(behaviour: dict | None) -> dict | None:
    """The behaviour tables of :func:`evalkit.listening.analysis.behaviour.summary` as display strings."""
    if not behaviour:
        return None

    def pct(x) -> str:
        return "-" if x is None else f"{100 * x:.0f} %"

    return {"participants": [{"assessor": p["assessor"], "trials": p["trials"],
                              "time": _score(p["median_time_on_trial_s"]), "full": pct(p["played_fully_share"]),
                              "clamped": p["clamped_trials"]} for p in behaviour.get("participants", [])],
            "conditions": [{"label": c["label"], "stimuli": c["stimuli"], "listened": _score(c["median_listened_s"]),
                            "fraction": pct(c["median_fraction"]), "full": pct(c["played_fully_share"])}
                           for c in behaviour.get("conditions", [])],
            "min_played": behaviour.get("min_played_pct"), "trials": behaviour.get("trials"),
            "timed": behaviour.get("timed_trials", behaviour.get("trials")),
            "excluded": behaviour.get("excluded_trials", []), "method": behaviour.get("method", "")}


def listening_context(data) -> dict:
    """Records of a :class:`~evalkit.reports.listening_data.ListeningData` for the template."""
    from evalkit.reports import plots
    from evalkit.reports.figures import figure

    analysis, conditions = data.analysis, data.conditions
    given = analysis.get("labels") or {}
    ctx = {"folder": Path(data.folder).name, "design": data.design, "analysis": analysis, "figures": [],
           "correlations": [], "rows": [], "comparisons": [], "assessors": _assessor_rows(analysis),
           "mdd": _mdd(analysis), "clamped": False, "panel": panel_rows(getattr(data, "panel", None) or {}),
           "headphone": headphone_rows(getattr(data, "headphone", None) or []),
           "behaviour": behaviour_context(analysis.get("behaviour"))}
    if data.design in ("acr", "dcr", "bs1116"):
        return _graded_context(ctx, analysis, conditions, given)
    if data.design != "mushra":
        ctx["figures"] = [f for f in [figure(plots.ab_figure, analysis, alt=f"{data.design.upper()} results with "
                                                                              "95 % Wilson intervals")] if f]
        abx = data.design == "abx"
        for p in analysis.get("pairs", []):
            a, b = _label(p["a"], conditions, given), _label(p["b"], conditions, given)
            share = None if p.get("share") is None else f"{p['share']:.2f}"
            ci = "-" if p.get("ci_low") is None else f"[{p['ci_low']:.2f}, {p['ci_high']:.2f}]"
            ctx["comparisons"].append({"a": a, "b": b, "n": p["n"], "share": share or "-", "ci": ci,
                                       "p": format_p(p.get("p"), "-"),
                                       "counts": [p.get(k) for k, _ in choice_columns(
                                           {"a": "a", "b": "b"}, abx)]})
        ctx["count_headers"] = [h for _, h in choice_columns({"a": "a", "b": "b"}, abx)]
        ctx["share_header"] = "share correct" if abx else "share preferring a"
        return ctx
    ctx["figures"] = [f for f in (
        figure(plots.mushra_figure, analysis, alt="MUSHRA mean score with 95 % CI per condition"),
        figure(plots.mushra_items_figure, analysis, alt="MUSHRA mean score with 95 % CI per item and condition"),
        figure(plots.mushra_box_figure, data.ratings, given, alt="MUSHRA score distribution per condition")) if f]
    for name, s in analysis.get("conditions", {}).items():
        ci, clamped = clamp_ci(s.get("ci_low"), s.get("ci_high"))
        ctx["clamped"] |= clamped
        label, spec = _label(name, conditions, given)
        ctx["rows"].append({"label": label, "spec": spec, "mean": _score(s.get("mean")), "ci": ci,
                            "clamped": clamped, "n": s.get("n"), "median": _score(s.get("median")),
                            "iqr": _score(s.get("iqr"))})
    for c in analysis.get("comparisons", []):
        ci = "-"
        if c.get("ci_low") is not None and c.get("ci_high") is not None:
            ci = f"[{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]"
        ctx["comparisons"].append({
            "a": _label(c["a"], conditions, given), "b": _label(c["b"], conditions, given), "n": c.get("n"),
            "diff": "-" if c.get("mean_difference") is None else f"{c['mean_difference']:+.1f}", "ci": ci,
            "test": c.get("test", ""), "p": format_p(c.get("p"), "-"), "p_holm": format_p(c.get("p_holm"), "-")})
    ctx["has_comparison_ci"] = any(c["ci"] != "-" for c in ctx["comparisons"])
    from evalkit.metrics import ALL_INFO

    for c in data.correlations:
        p, s = c["pearson"], c["spearman"]
        info = ALL_INFO.get(c["metric"])
        header = info.header if info is not None else c["metric"]
        ctx["correlations"].append({
            "metric": c["metric"], "header": header, "n": c["n"],
            "pearson": fmt(p.value), "pearson_ci": f"[{fmt(p.ci_low)}, {fmt(p.ci_high)}]",
            "spearman": fmt(s.value), "spearman_ci": f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]",
            "reason": p.reason or s.reason or ""})
        if not data.points.empty:
            points = data.points[data.points["metric"] == c["metric"]]
            fig = figure(plots.correlation_figure, points, c["metric"], info.unit if info is not None else "", given,
                         alt=f"MUSHRA mean per item and condition against {header}")
            if fig:
                ctx["figures"].append(fig)
    return ctx


def panel_rows(panel: dict) -> dict | None:
    """The panel description (:func:`evalkit.listening.questionnaire.summarise`) as table rows: one per question,
    its answers as ``answer n`` cells (a number question: median and range; a free-text one: how many answered).
    None when nobody of the panel answered."""
    if not panel or not panel.get("answered"):
        return None
    rows = []
    for q in panel["questions"]:
        if "counts" in q:
            summary = ", ".join(f"{answer} {n}" for answer, n in q["counts"] if n) or "-"
        elif q["type"] == "number":
            summary = "-" if q["median"] is None else f"median {q['median']:g} (range {q['min']:g}–{q['max']:g})"
        else:
            summary = f"{q['answered']} answered"
        rows.append({"question": q["text"], "id": q["id"], "answered": q["answered"], "summary": summary})
    return {"assessors": panel["assessors"], "answered": panel["answered"], "rows": rows}


def headphone_rows(checks: list[dict]) -> dict | None:
    """Headphone-check results: pass / fail counts and one row per participant who took it."""
    if not checks:
        return None
    rows = [{"assessor": c["assessor"], "result": "passed" if c["passed"] else "failed",
             "correct": f"{c['correct']} of {c['n_trials']}" if c.get("correct") is not None else "-",
             "analysed": "yes" if c.get("analysed") else "no"} for c in checks]
    passed = sum(c["passed"] for c in checks)
    return {"passed": passed, "failed": len(checks) - passed, "rows": rows}
def _graded_context(ctx: dict, analysis: dict, conditions: dict[str, str], given: dict[str, str]) -> dict:
    """ACR (MOS), DCR (DMOS) and BS.1116 (mean difference grade) rows: the CI over listeners and P.800's over
    ratings, two decimals, and the mixed-model comparisons."""
    def iv(low, high) -> str:
        return "-" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"

    ctx["measure"] = analysis.get("measure", "")
    ctx["scale"] = ", ".join(f"{v} {text}" for v, text in (analysis.get("scale") or {}).get("grades", []))
    for name, s in analysis.get("conditions", {}).items():
        label, spec = _label(name, conditions, given)
        ctx["rows"].append({"label": label, "spec": spec, "mean": _score(s.get("mean"), 2),
                            "ci": iv(s.get("ci_low"), s.get("ci_high")), "n": s.get("n"),
                            "ratings": s.get("ratings"), "ratings_ci": iv(s.get("ratings_ci_low"),
                                                                          s.get("ratings_ci_high"))})
    for c in analysis.get("comparisons", []):
        ctx["comparisons"].append({
            "a": _label(c["a"], conditions, given), "b": _label(c["b"], conditions, given), "n": c.get("n"),
            "diff": "-" if c.get("mean_difference") is None else f"{c['mean_difference']:+.2f}",
            "ci": "-" if c.get("ci_low") is None or c.get("ci_high") is None
            else f"[{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]",
            "test": c.get("test", ""), "p": format_p(c.get("p"), "-"), "p_holm": format_p(c.get("p_holm"), "-")})
    ctx["has_comparison_ci"] = any(c["ci"] != "-" for c in ctx["comparisons"])
    return ctx
