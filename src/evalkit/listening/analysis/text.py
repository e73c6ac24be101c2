"""Plain-text tables of ``listen analyze`` and ``listen plan`` reports (short condition labels, aligned columns)."""

from __future__ import annotations

from evalkit.messages import P_FLOOR, format_p  # noqa: F401  (imported from here by the report)

TEST_NAMES = {"mixed": "mixed model, Wald t (Satterthwaite df)", "t": "paired t on assessor means",
              "wilcoxon": "Wilcoxon signed-rank on assessor means", "permutation": "sign-flip on assessor means"}


def _f(x, digits: int = 1) -> str:
    return "nan" if x is None else f"{x:.{digits}f}"


def _p(x) -> str:
    return format_p(x)


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Columns as wide as their widest cell; the first ``left`` columns left-aligned, the others right."""
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]

    def line(cells):
        return "  ".join(f"{c:<{w}}" if k < left else f"{c:>{w}}"
                         for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _excluded_lines(report: dict) -> list[str]:
    lines = ["excluded: " + ("none" if not report["excluded"] else "")]
    lines.extend(f"  {e['assessor']}: {e['reason']}" for e in report["excluded"])
    kept = [p for p in report.get("incomplete", []) if p["included"]]
    if kept:
        lines.append("unfinished but included (--include-incomplete): "
                     + ", ".join(f"{p['assessor']} ({p['done']} of {p['trials']})" for p in kept))
    return lines


def format_mushra(report: dict) -> str:
    labels = report.get("labels", {})
    name = labels.get
    lines = [f"MUSHRA: {report['assessors']} assessors after post-screening"]
    rows = [[name(c, c), _f(s["mean"]), f"[{_f(s['ci_low'])}, {_f(s['ci_high'])}]", str(s["n"]), _f(s["median"]),
             _f(s["iqr"])] for c, s in report["conditions"].items()]
    lines += _table(["condition", "mean", "95% CI", "n", "median", "IQR"], rows)
    lines.append(f"(CI: {report.get('ci_method', 'Student-t over assessor means')})")
    lines.append("")
    lines.append("per item: mean [95% CI] over assessors")
    for item, conditions in report["items"].items():
        cells = [f"{name(c, c)} {_f(s['mean'])} [{_f(s['ci_low'])}, {_f(s['ci_high'])}]"
                 for c, s in conditions.items()]
        lines.append(f"  {item}: " + "; ".join(cells))
    lines.append("")
    lines += _excluded_lines(report)
    lines.append("")
    test = report.get("test") or (report["comparisons"][0]["test"] if report["comparisons"] else "")
    scope = f"{name(report['versus'], report['versus'])} vs each other condition" if report.get("versus") \
        else "every pair"
    lines.append(f"comparisons ({scope}; {TEST_NAMES.get(test, test)}; Holm over {len(report['comparisons'])}):")
    rows = [[name(c["a"], c["a"]), name(c["b"], c["b"]), _f(c["mean_difference"]),
             f"[{_f(c['ci_low'])}, {_f(c['ci_high'])}]", str(c["n"]), _f(c.get("df")), _p(c["p"]), _p(c["p_holm"])]
            for c in report["comparisons"]]
    lines += ["  " + x for x in _table(["a", "b", "a − b", "95% CI", "n", "df", "p", "Holm p"], rows, left=2)]
    model = report.get("model") or {}
    if model.get("error"):
        lines.append(f"mixed model: not fitted ({model['error']})")
    elif model.get("variance_components"):
        vc = model["variance_components"]
        lines.append("mixed model variance components (points², SD): "
                     + ", ".join(f"{k} {v:.1f} ({v ** 0.5:.1f})" for k, v in vc.items()))
    mdd = report.get("minimum_detectable_difference") or {}
    if mdd.get("points") is not None:
        lines.append(f"minimum detectable difference for this panel: {mdd['points']:.1f} points (power "
                     f"{mdd['power']:g}, alpha {mdd['alpha']:g} over {mdd['pairs']} pairs, {mdd['assessors']} "
                     f"assessors x {mdd['items']} items)")
    return "\n".join(lines)


def choice_columns(pair: dict, abx: bool) -> list[tuple[str, str]]:
    """(count key, header) of an AB or ABX pair's answer counts, named by what was chosen: ABX ``X = <a's
    label>`` (answers that judged X to be condition a), ``X = <b's label>``, ``correct``; AB ``prefer <label>``
    and ``no preference``."""
    a, b = pair.get("a_label", pair["a"]), pair.get("b_label", pair["b"])
    if abx:
        return [("prefer_a", f"X = {a}"), ("prefer_b", f"X = {b}"), ("correct", "correct")]
    return [("prefer_a", f"prefer {a}"), ("prefer_b", f"prefer {b}"), ("no_preference", "no preference")]


def format_graded(report: dict) -> str:
    """Plain text of an ACR, DCR or BS.1116 report (:func:`evalkit.listening.analysis.report.graded_report`)."""
    labels = report.get("labels", {})
    name = labels.get
    measure = report["measure"]
    design = {"acr": "ACR", "dcr": "DCR", "bs1116": "BS.1116"}.get(report["design"], report["design"])
    lines = [f"{design}: {measure} per condition, {report['assessors']} listeners"
             + (" after post-screening" if report["design"] == "bs1116" else ""),
             "scale: " + ", ".join(f"{v} {text}" for v, text in report["scale"]["grades"])
             + ("; difference grade = grade of the signal - grade of the hidden reference in the same trial"
                if report["design"] == "bs1116" else "")]
    rows = [[name(c, c), _f(s["mean"], 2), f"[{_f(s['ci_low'], 2)}, {_f(s['ci_high'], 2)}]", str(s["n"]),
             str(s["ratings"]), f"[{_f(s['ratings_ci_low'], 2)}, {_f(s['ratings_ci_high'], 2)}]"]
            for c, s in report["conditions"].items()]
    lines += _table(["condition", measure, "95% CI", "listeners", "ratings", "95% CI (ratings, P.800)"], rows)
    lines.append(f"(CI: {report['ci_method']}; the last column: {report['ratings_ci_method']})")
    lines.append("")
    lines.append(f"per item: {measure} [95% CI] over listeners")
    for item, conditions in report["items"].items():
        cells = [f"{name(c, c)} {_f(s['mean'], 2)} [{_f(s['ci_low'], 2)}, {_f(s['ci_high'], 2)}]"
                 for c, s in conditions.items()]
        lines.append(f"  {item}: " + "; ".join(cells))
    lines.append("")
    lines += _excluded_lines(report)
    lines.append("")
    test = report.get("test") or ""
    scope = f"{name(report['versus'], report['versus'])} vs each other condition" if report.get("versus") \
        else "every pair"
    lines.append(f"comparisons ({scope}; {TEST_NAMES.get(test, test)}; Holm over {len(report['comparisons'])}):")
    rows = [[name(c["a"], c["a"]), name(c["b"], c["b"]), _f(c["mean_difference"], 2),
             f"[{_f(c['ci_low'], 2)}, {_f(c['ci_high'], 2)}]", str(c["n"]), _f(c.get("df")), _p(c["p"]),
             _p(c["p_holm"])] for c in report["comparisons"]]
    lines += ["  " + x for x in _table(["a", "b", "a − b", "95% CI", "n", "df", "p", "Holm p"], rows, left=2)]
    model = report.get("model") or {}
    if model.get("error"):
        lines.append(f"mixed model: not fitted ({model['error']})")
    elif model.get("variance_components"):
        lines.append("mixed model variance components (grade², SD): "
                     + ", ".join(f"{k} {v:.3f} ({v ** 0.5:.2f})" for k, v in model["variance_components"].items()))
    return "\n".join(lines)


def format_choices(report: dict) -> str:
    lines = []
    abx = report["design"] == "abx"
    for p in report["pairs"]:
        lines.append(f"{p.get('a_label', p['a'])} vs {p.get('b_label', p['b'])}: n {p['n']} answers, "
                     f"{p.get('listeners', 0)} listeners")
        if abx:
            lines.append(f"  correct {p['correct']}/{p['n']}; mean listener share correct {_f(p['share'], 3)} (95% CI "
                         f"{_f(p['ci_low'], 3)}-{_f(p['ci_high'], 3)}), p {_p(p['p'])} [{p.get('group_test')}]; "
                         f"{p.get('discriminating_listeners')} of {p.get('listeners')} listeners discriminate "
                         f"individually (one-sided binomial p < 0.05)")
        else:
            lines.append("  " + ", ".join(f"{h} {p[k]}" for k, h in choice_columns(p, abx)) + "; "
                         f"mean listener share preferring {p.get('a_label', p['a'])} {_f(p['share'], 3)} "
                         f"(95% CI {_f(p['ci_low'], 3)}-"
                         f"{_f(p['ci_high'], 3)}), p {_p(p['p'])} [{p.get('group_test')}]")
        lines.append(f"  pooled over answers (ignores listeners): share {_f(p.get('pooled_share'), 3)}, "
                     f"binomial p {_p(p.get('p_pooled'))}")
        columns, a = choice_columns(p, abx), p.get("a_label", p["a"])
        rows = [[who, *(str(row[k]) for k, _ in columns), _f(row.get("share"), 3), _p(row.get("p"))]
                + (["yes" if row.get("discriminates") else "no"] if abx else [])
                for who, row in p["per_listener"].items()]
        header = ["listener", *(h for _, h in columns), "share correct" if abx else f"share preferring {a}", "p"] \
            + (["discriminates"] if abx else [])
        lines += ["    " + x for x in _table(header, rows)]
    lines += _excluded_lines(report)
    return "\n".join(lines)


def format_choice_plan(plan: dict) -> str:
    """Plain text of ``listen plan --design ab|abx``."""
    what = "preference for one side" if plan["design"] == "ab" else "correct identifications"
    need = plan["listeners_needed"]
    lines = [f"{plan['design'].upper()} panel plan: {plan['answers']} decisive answers per listener, true "
             f"{what} {plan['preference']:g}, alpha {plan['alpha']:g}",
             f"listeners needed for power {plan['target_power']:g}: "
             + (str(need) if need is not None else "more than the 200 simulated")]
    if "power" in plan:
        lines.append(f"power with {plan['listeners']} listeners: {plan['power']:.3f}")
    lines.append(f"({plan['test']}; {plan['sims']} simulated panels per size, seed {plan['seed']})")
    return "\n".join(lines)


def format_plan(plan: dict) -> str:
    """Plain text of :func:`evalkit.listening.analysis.report.plan_report`."""
    labels = plan.get("labels", {})
    need = plan["assessors_needed"]
    lines = [f"panel plan: difference {plan['difference']:g} points, power {plan['power']:g}, alpha {plan['alpha']:g} "
             f"over {plan['pairs']} pairs (each at {plan['alpha'] / plan['pairs']:.4g}), {plan['items']} items, "
             f"{plan['conditions']} conditions",
             f"pilot: {plan['pilot_assessors']} assessors; variance components (points²): "
             + ", ".join(f"{k} {v:.1f}" for k, v in plan["variance_components"].items()),
             f"assessors needed for {plan['difference']:g} points: "
             f"{need if need is not None else 'more than ' + str(plan['max_assessors'])} (simulated power "
             f"{_f(plan['achieved_power'], 3)}); the pilot's {plan['pilot_assessors']} assessors have power "
             f"{_f(plan['rows'][0]['power_with_pilot_panel'] if plan['rows'] else None, 2)}",
             f"minimum detectable difference with the pilot's {plan['pilot_assessors']} assessors: "
             f"{_f(plan['minimum_detectable_difference'])} points", "",
             "per pair: the pilot's difference and the assessors needed to detect a difference that large:"]
    rows = []
    for r in plan["rows"]:
        obs = r["assessors_for_observed"]
        rows.append([labels.get(r["a"], r["a"]), labels.get(r["b"], r["b"]), _f(r["pilot_difference"]),
                     _p(r["pilot_p_holm"]), f">{plan['max_assessors']}" if obs is None else str(obs)])
    lines += ["  " + x for x in _table(["a", "b", "pilot a − b", "pilot Holm p", "assessors"], rows, left=2)]
    lines.append(f"({plan['method']})")
    return "\n".join(lines)
