"""``evalkit listen analyze`` and ``listen plan``: ratings from a test folder or a long-format CSV → statistics.

Which assessors count is :mod:`evalkit.listening.analysis.panel`'s job; then BS.1534-3 post-screening (MUSHRA). Every
excluded assessor is listed with the reason. Conditions keep their names as JSON keys (``a``, ``b``) and get short
labels (``labels``, ``a_label``, ``b_label``) for people.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

from evalkit.listening.analysis.panel import Panel, condition_labels, folder_panel, resolve_condition
from evalkit.listening.model import Choice, Design, ListenError, Rating

MDD_POWER, MDD_ALPHA, MDD_SIMS = 0.8, 0.05, 1000
MODEL_FORMULA = ("score ~ condition + item (fixed) + assessor + assessor:condition + assessor:item (random "
                 "intercepts), REML")


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# --- reports ---------------------------------------------------------------------------------------------------

def mushra_report(ratings: list[Rating] | Panel, test: str = "mixed", versus: str | None = None) -> dict:
    """JSON-ready MUSHRA analysis: ``{"design", "assessors", "test", "versus", "ci_method", "labels",
    "conditions": {name: {mean, ci_low, ci_high, n, median, iqr}}, "items": {item: {condition: {...}}},
    "excluded": [{assessor, reason}], "incomplete": [...], "comparisons": [{a, b, a_label, b_label, n,
    mean_difference, test, p, p_holm, ci_low, ci_high, df}], "model": {...}, "minimum_detectable_difference":
    {points, power, alpha, assessors, pairs, items, method}}``."""
    from evalkit.listening.analysis.mushra import CI_METHOD, analyze_mushra

    panel = ratings if isinstance(ratings, Panel) else Panel(
        Design.MUSHRA, list(ratings), labels=condition_labels({r.condition for r in ratings}))
    versus = resolve_condition(versus, panel.labels) if versus is not None else None
    try:
        result = analyze_mushra(panel.records, test=test, versus=versus)
    except ValueError as exc:
        raise ListenError(str(exc)) from None
    labels = panel.labels
    comparisons = [{"a": c.a, "b": c.b, "a_label": labels.get(c.a, c.a), "b_label": labels.get(c.b, c.b)}
                   | asdict(c) for c in result.comparisons]
    return _clean({
        "design": "mushra",
        "assessors": result.assessors,
        "test": test,
        "versus": versus,
        "ci_method": CI_METHOD,
        "labels": labels,
        "conditions": {c: asdict(s) for c, s in result.conditions.items()},
        "items": {i: {c: asdict(s) for c, s in cs.items()} for i, cs in result.items.items()},
        "excluded": [asdict(e) for e in [*panel.excluded, *result.excluded]],
        "incomplete": [asdict(p) for p in panel.incomplete],
        "comparisons": comparisons,
        "model": _model_json(result),
        "minimum_detectable_difference": _mdd_json(result, len(comparisons)),
        "behaviour": _behaviour_json(panel),
    })


def _behaviour_json(panel: Panel) -> dict | None:
    return panel.behaviour.as_json() if panel.behaviour is not None else None


def _model_json(result) -> dict:
    fit = result.model
    if fit is None:
        return {"formula": MODEL_FORMULA, "error": result.model_error}
    return {"formula": MODEL_FORMULA, "variance_components": fit.variance, "method": fit.method,
            "converged": fit.converged, "ratings": fit.ratings, "df": "Satterthwaite", "error": None}


def _mdd_json(result, pairs: int) -> dict:
    from evalkit.stats.power import PanelModel, minimum_detectable_difference

    out = {"points": math.nan, "power": MDD_POWER, "alpha": MDD_ALPHA, "assessors": result.assessors,
           "pairs": pairs, "items": len(result.model.items) if result.model is not None else 0,
           "method": f"{MDD_SIMS} simulated balanced panels of the fitted mixed model (seed 0), each pair at "
                     f"alpha/pairs (Bonferroni, Holm's first step)"}
    if result.model is None or result.assessors < 2 or pairs < 1:
        return out | {"reason": result.model_error or "needs at least 2 assessors and 2 conditions"}
    model = PanelModel.from_fit(result.model)
    out["points"] = minimum_detectable_difference(model, result.assessors, MDD_POWER, MDD_ALPHA, pairs,
                                                  sims=MDD_SIMS, seed=0)
    return out


MEASURES = {Design.ACR: "MOS", Design.DCR: "DMOS", Design.BS1116: "difference grade"}


def graded_report(panel: Panel, test: str = "mixed", versus: str | None = None) -> dict:
    """JSON-ready ACR (MOS), DCR (DMOS) or BS.1116 (mean difference grade) analysis, shaped like
    :func:`mushra_report`: ``{"design", "measure", "scale", "assessors", "test", "versus", "ci_method",
    "ratings_ci_method", "labels", "conditions": {name: {mean, ci_low, ci_high, n, median, iqr, ratings,
    ratings_mean, ratings_ci_low, ratings_ci_high}}, "items", "excluded", "incomplete", "comparisons", "model"}``
    (see :mod:`evalkit.listening.analysis.grades`; BS.1116's records are difference grades, post-screened)."""
    from evalkit.listening.analysis.grades import (
        CI_METHOD,
        DIFFERENCE_SCALE,
        GRADE_SCALE,
        RATINGS_CI_METHOD,
        analyze_grades,
    )
    from evalkit.listening.model import GRADES

    bs1116 = panel.design is Design.BS1116
    versus = resolve_condition(versus, panel.labels) if versus is not None else None
    try:
        result = analyze_grades(panel.records, scale=DIFFERENCE_SCALE if bs1116 else GRADE_SCALE, screen=bs1116,
                                test=test, versus=versus)
    except ValueError as exc:
        raise ListenError(str(exc)) from None
    labels = panel.labels
    return _clean({
        "design": str(panel.design), "measure": MEASURES[panel.design],
        "scale": {"min": DIFFERENCE_SCALE[0] if bs1116 else GRADE_SCALE[0],
                  "max": DIFFERENCE_SCALE[1] if bs1116 else GRADE_SCALE[1],
                  "grades": [list(g) for g in GRADES[panel.design]]},
        "assessors": result.assessors, "test": test, "versus": versus, "ci_method": CI_METHOD,
        "ratings_ci_method": RATINGS_CI_METHOD, "labels": labels,
        "conditions": {c: asdict(s) for c, s in result.conditions.items()},
        "items": {i: {c: asdict(s) for c, s in cs.items()} for i, cs in result.items.items()},
        "excluded": [asdict(e) for e in [*panel.excluded, *result.excluded]],
        "incomplete": [asdict(p) for p in panel.incomplete],
        "comparisons": [{"a": c.a, "b": c.b, "a_label": labels.get(c.a, c.a), "b_label": labels.get(c.b, c.b)}
                        | asdict(c) for c in result.comparisons],
        "model": _model_json(result),
    })


def panel_report(panel: Panel, test: str = "mixed", versus: str | None = None) -> dict:
    """The report of ``panel``'s design: :func:`mushra_report`, :func:`graded_report` or :func:`choices_report`."""
    if panel.design is Design.MUSHRA:
        return mushra_report(panel, test, versus)
    if panel.design in MEASURES:
        return graded_report(panel, test, versus)
    return choices_report(panel, panel.design)


def choices_report(choices: list[Choice] | Panel, design: Design) -> dict:
    """JSON-ready AB/ABX analysis: ``{"design", "labels", "excluded", "incomplete", "pairs": [{a, b, a_label,
    b_label, n, prefer_a, prefer_b, no_preference, share, ci_low, ci_high, p, group_test, listeners,
    pooled_share, pooled_ci_low, pooled_ci_high, p_pooled, correct, discriminating_listeners, per_listener}]}``
    (see :mod:`evalkit.listening.analysis.choices`: share, CI and p are over listeners, pooled ones over answers)."""
    from evalkit.listening.analysis.choices import analyze_choices

    panel = choices if isinstance(choices, Panel) else Panel(
        design, list(choices), labels=condition_labels({c for r in choices for c in (r.condition_a, r.condition_b)}))
    pairs = analyze_choices(panel.records, abx=design is Design.ABX)
    labels = panel.labels
    return _clean({"design": str(design), "labels": labels, "excluded": [asdict(e) for e in panel.excluded],
                   "incomplete": [asdict(p) for p in panel.incomplete], "behaviour": _behaviour_json(panel),
                   "pairs": [{"a": p.a, "b": p.b, "a_label": labels.get(p.a, p.a), "b_label": labels.get(p.b, p.b)}
                             | asdict(p) for p in pairs]})


def analyze_test_dir(test_dir: str | Path, test: str = "mixed", *, versus: str | None = None,
                     include_incomplete: bool = False, exclude_headphone_fail: bool = False,
                     labels: dict[str, str] | None = None, min_played_pct: float | None = None) -> dict:
    """Analysis of everything stored so far in a test folder (:func:`panel_report`), with its listening
    behaviour (``behaviour``)."""
    panel = folder_panel(test_dir, include_incomplete, exclude_headphone_fail, labels, min_played_pct=min_played_pct)
    return panel_report(panel, test, versus)


def plan_report(panel: Panel, difference: float, power: float = 0.8, alpha: float = 0.05, pairs: int | None = None,
                items: int | None = None, versus: str | None = None, sims: int = 2000, seed: int = 0) -> dict:
    """Panel-size plan from a pilot MUSHRA panel (see :mod:`evalkit.stats.power`): the assessors needed
    for ``difference`` points at ``power`` with each of ``pairs`` comparisons at ``alpha / pairs`` (default: the
    pilot analysis' pairs), the pilot panel's power and minimum detectable difference, and per pair the assessors
    needed to detect the pilot's own difference.

    Raises:
        ListenError: not a MUSHRA panel, bad numbers, or a pilot the mixed model cannot be fitted to.
    """
    from evalkit.stats.mixed_model import fit_mixed
    from evalkit.stats.power import (
        MAX_ASSESSORS,
        PanelModel,
        assessors_needed,
        minimum_detectable_difference,
        null_panels,
        power_from,
    )

    if panel.design is not Design.MUSHRA:
        raise ListenError(f"listen plan: plans MUSHRA panels, this test is {panel.design}")
    checks = [(math.isfinite(difference) and difference > 0, f"--difference {difference}: expected points > 0"),
              (0 < power < 1, f"--power {power}: expected a number between 0 and 1"),
              (0 < alpha < 1, f"--alpha {alpha}: expected a number between 0 and 1"),
              (pairs is None or pairs >= 1, f"--pairs {pairs}: expected 1 or more"),
              (items is None or items >= 1, f"--items {items}: expected 1 or more"),
              (sims >= 100, f"--sims {sims}: expected 100 or more")]
    for ok, message in checks:
        if not ok:
            raise ListenError(message)
    pilot = mushra_report(panel, "mixed", versus)
    if pilot["model"].get("error"):
        raise ListenError(f"listen plan: the pilot cannot be modelled ({pilot['model']['error']})")
    screened = {e["assessor"] for e in pilot["excluded"]}
    fit = fit_mixed([r for r in panel.records if r.assessor not in screened])
    model = PanelModel.from_fit(fit, items)
    n_pairs = pairs if pairs is not None else len(pilot["comparisons"])
    cache: dict = {}
    need = assessors_needed(model, difference, power, alpha, n_pairs, sims, seed, cache=cache)
    now = pilot["assessors"]
    null_now = cache.get(now) or null_panels(model, now, sims, seed)
    rows = []
    for c in pilot["comparisons"]:
        observed = c["mean_difference"]
        obs_need = assessors_needed(model, observed, power, alpha, n_pairs, sims, seed, cache=cache) \
            if observed else None
        rows.append({"a": c["a"], "b": c["b"], "a_label": c["a_label"], "b_label": c["b_label"],
                     "pilot_difference": observed, "pilot_p_holm": c["p_holm"], "assessors_needed": need.assessors,
                     "power_with_pilot_panel": power_from(null_now, difference, alpha / n_pairs),
                     "assessors_for_observed": obs_need.assessors if obs_need else None})
    return _clean({
        "difference": difference, "power": power, "alpha": alpha, "pairs": n_pairs, "items": model.items,
        "conditions": model.conditions, "pilot_assessors": now, "assessors_needed": need.assessors,
        "achieved_power": need.power, "max_assessors": MAX_ASSESSORS, "sims": sims, "seed": seed,
        "minimum_detectable_difference": minimum_detectable_difference(model, now, power, alpha, n_pairs, sims,
                                                                       seed) if now >= 2 else math.nan,
        "variance_components": fit.variance, "labels": pilot["labels"], "excluded": pilot["excluded"],
        "rows": rows,
        "method": f"{sims} seeded simulated panels per panel size (seed {seed}) from the pilot's mixed-model "
                  f"variance components, balanced-design mixed-model t test, each pair at alpha/pairs "
                  f"(Bonferroni, Holm's first step)",
    })


def format_report(report: dict) -> str:
    """Plain-text tables of a report made by :func:`mushra_report`, :func:`graded_report` or
    :func:`choices_report`, with its listening behaviour."""
    from evalkit.listening.analysis.behaviour import format_behaviour
    from evalkit.listening.analysis.text import format_choices, format_graded, format_mushra

    if report["design"] == "mushra":
        text = format_mushra(report)
    else:
        text = format_graded(report) if "measure" in report else format_choices(report)
    behaviour = format_behaviour(report.get("behaviour"))
    return text + ("\n\n" + behaviour if behaviour else "")
