"""``evalkit listen analyze`` and ``listen plan``: ratings from a test folder or a long-format CSV → statistics.

Which assessors count: by default only those who finished all their trials (a CSV has no trial record, so there
an assessor who rated fewer items than the most complete one counts as unfinished); with
``exclude_headphone_fail`` also only those who passed the headphone check; then BS.1534-3 post-screening (MUSHRA).
Every excluded assessor is listed with the reason. Conditions keep their names as JSON keys (``a``, ``b``) and get
short labels (``labels``, ``a_label``, ``b_label``) for people.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalkit.listening.model import (
    DEFINITION_FILE,
    STORE_FILE,
    Choice,
    Design,
    ListenError,
    Rating,
    load_definition,
)

CSV_COLUMNS = ("assessor", "item", "condition", "score")
MDD_POWER, MDD_ALPHA, MDD_SIMS = 0.8, 0.05, 1000
MODEL_FORMULA = ("score ~ condition + item (fixed) + assessor + assessor:condition + assessor:item (random "
                 "intercepts), REML")


def load_ratings_csv(path: str | Path) -> list[Rating]:
    """Read ``assessor,item,condition,score`` (header required, in any order; no other columns).

    Raises:
        ListenError: missing, binary or non-UTF-8 file, unknown or missing columns, empty fields, scores outside
            0..100, no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ListenError(f"{path}: ratings file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            ratings = _read_rows(path, csv.DictReader(f))
    except UnicodeDecodeError:
        raise ListenError(f"{path}: not a UTF-8 text CSV file (binary or another encoding)") from None
    except csv.Error as exc:
        raise ListenError(f"{path}: not a readable CSV file ({exc})") from None
    if not ratings:
        raise ListenError(f"{path}: no ratings")
    seen = set()
    for r in ratings:
        key = (r.assessor, r.item, r.condition)
        if key in seen:
            raise ListenError(f"{path}: assessor {r.assessor} rated item {r.item} / {r.condition} twice")
        seen.add(key)
    return ratings


def _read_rows(path: Path, reader: csv.DictReader) -> list[Rating]:
    header = [h.strip() for h in reader.fieldnames or []]
    if any("\x00" in h for h in header):
        raise ListenError(f"{path}: not a UTF-8 text CSV file (binary or another encoding)")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if unknown or missing:
        raise ListenError(f"{path}: expected columns {','.join(CSV_COLUMNS)}"
                          + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                          + (f"; missing: {', '.join(missing)}" if missing else ""))
    ratings = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        empty = [c for c in CSV_COLUMNS if not row.get(c)]
        if empty:
            raise ListenError(f"{path}: line {line}: empty {empty[0]}")
        try:
            score = float(row["score"])
        except ValueError:
            raise ListenError(f"{path}: line {line}: score {row['score']!r} is not a number") from None
        if not (math.isfinite(score) and 0 <= score <= 100):
            raise ListenError(f"{path}: line {line}: score {row['score']} is outside 0..100")
        ratings.append(Rating(row["assessor"], row["item"], row["condition"], score))
    return ratings


def export_csv(records: list) -> str:
    """Ratings (``assessor,item,condition,score``, the format ``--ratings`` reads) or AB/ABX choices as CSV."""
    import io

    out = io.StringIO()
    if records:
        writer = csv.DictWriter(out, fieldnames=list(asdict(records[0])), lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)
    return out.getvalue()


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# --- who is analysed -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    """Records of a test (ratings or choices) with the assessors left out before the statistics, and labels."""

    design: Design
    records: list
    excluded: list[dict] = field(default_factory=list)  # [{assessor, reason}] left out before the statistics
    incomplete: list[dict] = field(default_factory=list)  # [{assessor, done, trials, included}]
    labels: dict[str, str] = field(default_factory=dict)  # condition name -> short label


def condition_labels(names, specs: dict[str, str] | None = None, given: dict[str, str] | None = None,
                     overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Short label per condition name: ``overrides`` (``--label``, by name or spec), then the test's own labels
    (``test.json`` ``labels``), then :func:`evalkit.labels.short_label` of the condition's spec; kept unique."""
    from evalkit.labels import short_label

    specs, given, overrides = specs or {}, given or {}, overrides or {}
    out = {}
    for name in sorted(set(names)):
        spec = specs.get(name, name)
        out[name] = overrides.get(name) or overrides.get(spec) or given.get(name) or short_label(spec)
    groups: dict[str, list[str]] = defaultdict(list)
    for name, label in out.items():
        groups[label].append(name)
    for label, group in groups.items():
        if len(group) > 1:
            for name in group:
                out[name] = f"{label} [{name}]"
    return out


def csv_panel(path: str | Path, include_incomplete: bool = False, overrides: dict[str, str] | None = None) -> Panel:
    """A ratings CSV as a panel: an assessor with fewer rated items than the most complete one is unfinished."""
    ratings = load_ratings_csv(path)
    items: dict[str, set[str]] = defaultdict(set)
    for r in ratings:
        items[r.assessor].add(r.item)
    most = max(len(v) for v in items.values())
    incomplete = [{"assessor": a, "done": len(v), "trials": most, "included": include_incomplete}
                  for a, v in sorted(items.items()) if len(v) < most]
    return _filtered(Design.MUSHRA, ratings, incomplete, {}, include_incomplete,
                     condition_labels({r.condition for r in ratings}, overrides=overrides), "items")


def folder_panel(test_dir: str | Path, include_incomplete: bool = False, exclude_headphone_fail: bool = False,
                   overrides: dict[str, str] | None = None) -> Panel:
    """Everything stored so far in a test folder, with unfinished (and headphone-failed) assessors left out.

    Raises:
        ListenError: no definition, no ratings or answers yet, or no headphone check when one is asked for.
    """
    from evalkit.listening.storage import ListeningStore

    definition = load_definition(test_dir, check_files=False)
    db = Path(test_dir) / STORE_FILE
    if not db.is_file():
        raise ListenError(f"{db}: no ratings yet (serve the test with `evalkit listen serve`)")
    with ListeningStore(db) as store:
        records = store.ratings() if definition.design is Design.MUSHRA else store.choices()
        if not records:
            raise ListenError(f"{db}: no {'ratings' if definition.design is Design.MUSHRA else 'answers'} yet")
        incomplete = [{"assessor": p["assessor"], "done": p["done"], "trials": p["trials"],
                       "included": include_incomplete}
                      for p in store.progress(definition) if p["finished"] is None and p["done"] > 0]
        headphone = _headphone_results(store, definition, db) if exclude_headphone_fail else {}
    names = {r.condition for r in records} if definition.design is Design.MUSHRA else \
        {c for r in records for c in (r.condition_a, r.condition_b)}
    given = getattr(definition, "labels", None) or _raw_labels(Path(test_dir))
    labels = condition_labels(names, dict(definition.conditions), given, overrides)
    failed = headphone_exclusions({r.assessor for r in records}, headphone) if exclude_headphone_fail else {}
    return _filtered(definition.design, records, incomplete, failed, include_incomplete, labels, "trials")


def _raw_labels(folder: Path) -> dict[str, str]:
    try:
        raw = json.loads((folder / DEFINITION_FILE).read_text()).get("labels") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _headphone_results(store, definition, db: Path) -> dict[str, bool]:
    read = getattr(store, "headphone_results", None)
    results = read() if callable(read) else {}
    if getattr(definition, "headphone", None) is None and not results:
        raise ListenError(f"{db.parent}: this test has no headphone check (--exclude-headphone-fail needs one)")
    return dict(results)


def headphone_exclusions(assessors, results: dict[str, bool]) -> dict[str, str]:
    """Reason per assessor who did not pass the headphone check (failed it, or has no result).

    >>> headphone_exclusions({"L001", "L002", "L003"}, {"L001": True, "L002": False})
    {'L002': 'failed the headphone check', 'L003': 'no headphone check result'}
    """
    out = {}
    for a in sorted(assessors):
        if a not in results:
            out[a] = "no headphone check result"
        elif not results[a]:
            out[a] = "failed the headphone check"
    return out


def exclude_assessors(records: list, incomplete: list[dict], headphone_failed: dict[str, str],
                      include_incomplete: bool, unit: str = "trials") -> tuple[list, list[dict]]:
    """Records of the assessors kept, and ``[{assessor, reason}]`` for those left out (unfinished unless
    ``include_incomplete``; headphone reasons as given)."""
    reasons: dict[str, list[str]] = defaultdict(list)
    if not include_incomplete:
        for p in incomplete:
            reasons[p["assessor"]].append(f"unfinished: {p['done']} of {p['trials']} {unit}")
    for assessor, why in headphone_failed.items():
        reasons[assessor].append(why)
    kept = [r for r in records if r.assessor not in reasons]
    return kept, [{"assessor": a, "reason": "; ".join(v)} for a, v in sorted(reasons.items())]


def _filtered(design, records, incomplete, failed, include_incomplete, labels, unit) -> Panel:
    kept, excluded = exclude_assessors(records, incomplete, failed, include_incomplete, unit)
    if not kept:
        raise ListenError("no assessor is left to analyse: " + "; ".join(f"{e['assessor']} ({e['reason']})"
                                                                          for e in excluded[:3]))
    return Panel(design, kept, excluded, incomplete, labels)


def resolve_condition(name: str, labels: dict[str, str]) -> str:
    """A condition given by name, spec or label → its name.

    Raises:
        ListenError: it matches no condition.
    """
    if name in labels:
        return name
    matches = [n for n, label in labels.items() if label == name]
    if len(matches) == 1:
        return matches[0]
    raise ListenError(f"--versus {name}: not a condition of the test (conditions: "
                      + ", ".join(f"{n} ({labels[n]})" for n in labels) + ")")


# --- reports ---------------------------------------------------------------------------------------------------

def mushra_report(ratings: list[Rating] | Panel, test: str = "mixed", versus: str | None = None) -> dict:
    """JSON-ready MUSHRA analysis: ``{"design", "assessors", "test", "versus", "ci_method", "labels",
    "conditions": {name: {mean, ci_low, ci_high, n, median, iqr}}, "items": {item: {condition: {...}}},
    "excluded": [{assessor, reason}], "incomplete": [...], "comparisons": [{a, b, a_label, b_label, n,
    mean_difference, test, p, p_holm, ci_low, ci_high, df}], "model": {...}, "minimum_detectable_difference":
    {points, power, alpha, assessors, pairs, items, method}}``."""
    from evalkit.analysis.listening_stats import CI_METHOD, analyze_mushra

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
        "excluded": panel.excluded + [asdict(e) for e in result.excluded],
        "incomplete": panel.incomplete,
        "comparisons": comparisons,
        "model": _model_json(result),
        "minimum_detectable_difference": _mdd_json(result, len(comparisons)),
    })


def _model_json(result) -> dict:
    fit = result.model
    if fit is None:
        return {"formula": MODEL_FORMULA, "error": result.model_error}
    return {"formula": MODEL_FORMULA, "variance_components": fit.variance, "method": fit.method,
            "converged": fit.converged, "ratings": fit.ratings, "df": "Satterthwaite", "error": None}


def _mdd_json(result, pairs: int) -> dict:
    from evalkit.analysis.panel_plan import PanelModel, minimum_detectable_difference

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


def choices_report(choices: list[Choice] | Panel, design: Design) -> dict:
    """JSON-ready AB/ABX analysis: ``{"design", "labels", "excluded", "incomplete", "pairs": [{a, b, a_label,
    b_label, n, prefer_a, prefer_b, no_preference, share, ci_low, ci_high, p, group_test, listeners,
    pooled_share, pooled_ci_low, pooled_ci_high, p_pooled, correct, discriminating_listeners, per_listener}]}``
    (see :mod:`evalkit.analysis.choice_stats`: share, CI and p are over listeners, pooled ones over answers)."""
    from evalkit.analysis.choice_stats import analyze_choices

    panel = choices if isinstance(choices, Panel) else Panel(
        design, list(choices), labels=condition_labels({c for r in choices for c in (r.condition_a, r.condition_b)}))
    pairs = analyze_choices(panel.records, abx=design is Design.ABX)
    labels = panel.labels
    return _clean({"design": str(design), "labels": labels, "excluded": panel.excluded,
                   "incomplete": panel.incomplete,
                   "pairs": [{"a": p.a, "b": p.b, "a_label": labels.get(p.a, p.a), "b_label": labels.get(p.b, p.b)}
                             | asdict(p) for p in pairs]})


def analyze_test_dir(test_dir: str | Path, test: str = "mixed", *, versus: str | None = None,
                     include_incomplete: bool = False, exclude_headphone_fail: bool = False,
                     labels: dict[str, str] | None = None) -> dict:
    """Analysis of everything stored so far in a test folder (MUSHRA: :func:`mushra_report`; AB/ABX:
    :func:`choices_report`)."""
    panel = folder_panel(test_dir, include_incomplete, exclude_headphone_fail, labels)
    if panel.design is Design.MUSHRA:
        return mushra_report(panel, test, versus)
    return choices_report(panel, panel.design)


def plan_report(panel: Panel, difference: float, power: float = 0.8, alpha: float = 0.05, pairs: int | None = None,
                items: int | None = None, versus: str | None = None, sims: int = 2000, seed: int = 0) -> dict:
    """Panel-size plan from a pilot MUSHRA panel (see :mod:`evalkit.analysis.panel_plan`): the assessors needed
    for ``difference`` points at ``power`` with each of ``pairs`` comparisons at ``alpha / pairs`` (default: the
    pilot analysis' pairs), the pilot panel's power and minimum detectable difference, and per pair the assessors
    needed to detect the pilot's own difference.

    Raises:
        ListenError: not a MUSHRA panel, bad numbers, or a pilot the mixed model cannot be fitted to.
    """
    from evalkit.analysis.mixed_model import fit_mixed
    from evalkit.analysis.panel_plan import (
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
    """Plain-text tables of a report made by :func:`mushra_report` or :func:`choices_report`."""
    from evalkit.listening.report_text import format_choices, format_mushra

    return format_mushra(report) if report["design"] == "mushra" else format_choices(report)
