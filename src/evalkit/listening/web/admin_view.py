"""The admin page's analysis and panel (Streamlit-only): the HTML report's listening tables and figures for the
test folder (:mod:`evalkit.reports.listening_section`), the panel description from the finish page's
questionnaire, the headphone-check results, every participant's answers and their CSV export."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from evalkit.listening.model import Design, TestDefinition
from evalkit.listening.questionnaire import all_questions, answer_table, answers_csv
from evalkit.listening.storage import ListeningStore


def _table(rows: list[dict], columns: dict[str, str]) -> None:
    """``rows`` as a dataframe with the ``columns`` (key → header) in this order."""
    st.dataframe(pd.DataFrame([{h: r.get(k) for k, h in columns.items()} for r in rows]), hide_index=True)


def _label(cell) -> str:
    return cell[0] if isinstance(cell, list | tuple) else str(cell)


def show_analysis(folder: Path, definition: TestDefinition, store: ListeningStore) -> None:
    """The analysis of everything stored so far as tables and figures, then the panel; a note when there is
    nothing to analyse yet."""
    from evalkit.reports.listening_data import load_test
    from evalkit.reports.listening_section import listening_context
    from evalkit.reports.rundata import ReportError

    try:
        ctx = listening_context(load_test(folder))
    except ReportError as exc:
        st.info(str(exc))
        ctx = None
    if ctx is not None:
        st.subheader("Analysis")
        if ctx["design"] == str(Design.MUSHRA):
            _mushra_tables(ctx)
        else:
            _choice_tables(ctx)
        st.subheader("Assessors left out (BS.1534-3 post-screening)")
        _table(ctx["assessors"] or [{"assessor": "none"}], {"assessor": "assessor", "status": "status",
                                                            "reason": "reason"})
        if ctx["figures"]:
            st.markdown("**Figures** (as in the HTML report)")
        for f in ctx["figures"]:
            st.image(f["svg"], caption=f["alt"])
    _panel(folder, ctx, definition, store)


def _mushra_tables(ctx: dict) -> None:
    a = ctx["analysis"]
    st.caption(f"{a.get('assessors')} assessors after post-screening; means over assessors' per-condition means, "
               "Student-t 95 % CIs on the 0–100 scale")
    _table(ctx["rows"], {"label": "condition", "mean": "mean", "ci": "95 % CI", "n": "n", "median": "median",
                         "iqr": "IQR"})
    if ctx["mdd"]:
        st.caption(f"Minimum detectable difference: {ctx['mdd']['points']} points ({ctx['mdd']['method']})")
    if ctx["comparisons"]:
        st.markdown("**Paired comparisons**")
        rows = [c | {"a": _label(c["a"]), "b": _label(c["b"])} for c in ctx["comparisons"]]
        _table(rows, {"a": "a", "b": "b", "n": "n", "diff": "mean a − b", "ci": "95 % CI", "test": "test",
                      "p": "p", "p_holm": "p (Holm)"})


def _choice_tables(ctx: dict) -> None:
    headers = ctx["count_headers"]
    rows = [{"a": _label(c["a"]), "b": _label(c["b"]), "n": c["n"], **dict(zip(headers, c["counts"], strict=True)),
             "share": c["share"], "ci": c["ci"], "p": c["p"]} for c in ctx["comparisons"]]
    _table(rows, {"a": "a", "b": "b", "n": "n", **{h: h for h in headers}, "share": ctx["share_header"],
                  "ci": "95 % CI", "p": "p"})


def _panel(folder: Path, ctx: dict | None, definition: TestDefinition, store: ListeningStore) -> None:
    questions = all_questions(definition.questionnaire)
    answers = store.questionnaire_answers()
    st.subheader("Panel (finish-page questionnaire)")
    panel = ctx["panel"] if ctx is not None else None
    if panel:
        st.caption(f"{panel['answered']} of the {panel['assessors']} assessors in the analysis answered")
        _table(panel["rows"], {"question": "question", "answered": "answered", "summary": "answers"})
    header, rows = answer_table(questions, answers)
    if rows:
        st.markdown(f"**Every participant's answers** ({len(rows)})")
        st.dataframe(pd.DataFrame(rows, columns=header), hide_index=True)
        st.download_button("Export questionnaire answers (CSV)", answers_csv(questions, answers),
                           file_name=f"{folder.name}-questionnaire.csv", mime="text/csv")
    else:
        st.caption("Nobody has answered the questionnaire yet.")
    if ctx is not None and ctx["headphone"]:
        h = ctx["headphone"]
        st.subheader("Headphone check")
        st.caption(f"{h['passed']} passed, {h['failed']} failed")
        _table(h["rows"], {"assessor": "assessor", "result": "result", "correct": "correct",
                           "analysed": "in the analysis"})
