"""``evalkit listen analyze``: ratings from a test folder or a long-format CSV → statistics (JSON or text)."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
from pathlib import Path

from evalkit.listening.model import STORE_FILE, Choice, Design, ListenError, Rating, load_definition

CSV_COLUMNS = ("assessor", "item", "condition", "score")


def load_ratings_csv(path: str | Path) -> list[Rating]:
    """Read ``assessor,item,condition,score`` (header required, in any order; no other columns).

    Raises:
        ListenError: missing file, unknown or missing columns, empty fields, scores outside 0..100, no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ListenError(f"{path}: ratings file not found")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
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
    if not ratings:
        raise ListenError(f"{path}: no ratings")
    seen = set()
    for r in ratings:
        key = (r.assessor, r.item, r.condition)
        if key in seen:
            raise ListenError(f"{path}: assessor {r.assessor} rated item {r.item} / {r.condition} twice")
        seen.add(key)
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


def mushra_report(ratings: list[Rating], test: str = "wilcoxon") -> dict:
    """JSON-ready MUSHRA analysis: ``{"design", "assessors", "conditions": {name: {mean, ci_low, ci_high, n,
    median, iqr}}, "items": {item: {condition: {...}}}, "excluded": [{assessor, reason}], "comparisons": [...]}``."""
    from evalkit.analysis.listening_stats import analyze_mushra

    result = analyze_mushra(ratings, test=test)
    return _clean({
        "design": "mushra",
        "assessors": result.assessors,
        "conditions": {c: asdict(s) for c, s in result.conditions.items()},
        "items": {i: {c: asdict(s) for c, s in cs.items()} for i, cs in result.items.items()},
        "excluded": [asdict(e) for e in result.excluded],
        "comparisons": [asdict(c) for c in result.comparisons],
    })


def choices_report(choices: list[Choice], design: Design) -> dict:
    """JSON-ready AB/ABX analysis: ``{"design", "pairs": [{a, b, n, prefer_a, prefer_b, no_preference, share,
    ci_low, ci_high, p, correct, per_listener}]}`` (AB: share = prefer_a / decisive answers, two-sided exact
    binomial p; ABX: share = correct / n, one-sided binomial p against chance)."""
    from evalkit.analysis.listening_stats import analyze_choices

    pairs = analyze_choices(choices, abx=design is Design.ABX)
    return _clean({"design": str(design), "pairs": [asdict(p) for p in pairs]})


def analyze_test_dir(test_dir: str | Path, test: str = "wilcoxon") -> dict:
    """Analysis of everything stored so far in a test folder."""
    from evalkit.listening.storage import ListeningStore

    definition = load_definition(test_dir, check_files=False)
    db = Path(test_dir) / STORE_FILE
    if not db.is_file():
        raise ListenError(f"{db}: no ratings yet (serve the test with `evalkit listen serve`)")
    with ListeningStore(db) as store:
        if definition.design is Design.MUSHRA:
            ratings = store.ratings()
            if not ratings:
                raise ListenError(f"{db}: no ratings yet")
            return mushra_report(ratings, test)
        choices = store.choices()
        if not choices:
            raise ListenError(f"{db}: no answers yet")
        return choices_report(choices, definition.design)


def _f(x, digits: int = 1) -> str:
    return "nan" if x is None else f"{x:.{digits}f}"


def format_report(report: dict) -> str:
    """Plain-text tables of a report made by :func:`mushra_report` or :func:`choices_report`."""
    lines = []
    if report["design"] == "mushra":
        lines.append(f"MUSHRA: {report['assessors']} assessors after post-screening")
        lines.append(f"{'condition':<44} {'mean':>6} {'95% CI':>15} {'n':>3} {'median':>6} {'IQR':>5}")
        for name, s in report["conditions"].items():
            ci = f"[{_f(s['ci_low'])}, {_f(s['ci_high'])}]"
            lines.append(f"{name:<44} {_f(s['mean']):>6} {ci:>15} {s['n']:>3} {_f(s['median']):>6} {_f(s['iqr']):>5}")
        lines.append("")
        lines.append("per item: mean [95% CI] over assessors")
        for item, conditions in report["items"].items():
            cells = [f"{c} {_f(s['mean'])} [{_f(s['ci_low'])}, {_f(s['ci_high'])}]" for c, s in conditions.items()]
            lines.append(f"  {item}: " + "; ".join(cells))
        lines.append("")
        lines.append("excluded: " + ("none" if not report["excluded"] else ""))
        lines.extend(f"  {e['assessor']}: {e['reason']}" for e in report["excluded"])
        lines.append("")
        lines.append("paired comparisons (per-assessor means; Holm-corrected):")
        for c in report["comparisons"]:
            lines.append(f"  {c['a']} vs {c['b']}: diff {_f(c['mean_difference'])}, n {c['n']}, "
                         f"{c['test']} p {_f(c['p'], 4)}, Holm p {_f(c['p_holm'], 4)}")
        return "\n".join(lines)
    for p in report["pairs"]:
        lines.append(f"{p['a']} vs {p['b']}: n {p['n']}")
        if report["design"] == "abx":
            lines.append(f"  correct {p['correct']}/{p['n']} = {_f(p['share'], 3)} "
                         f"(95% CI {_f(p['ci_low'], 3)}-{_f(p['ci_high'], 3)}), one-sided binomial p {_f(p['p'], 4)}")
        else:
            lines.append(f"  prefer a {p['prefer_a']}, prefer b {p['prefer_b']}, no preference {p['no_preference']}; "
                         f"share a {_f(p['share'], 3)} (95% Wilson CI {_f(p['ci_low'], 3)}-{_f(p['ci_high'], 3)}), "
                         f"two-sided binomial p {_f(p['p'], 4)}")
        for who, row in p["per_listener"].items():
            lines.append(f"    {who}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return "\n".join(lines)
