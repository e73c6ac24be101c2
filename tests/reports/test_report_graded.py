"""The report's listening section for ACR and BS.1116 tests (issue 27, point 9): MOS (or mean difference grade)
per condition with the interval over listeners and P.800's over ratings, and the mixed-model comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.listening.analysis.report import analyze_test_dir
from evalkit.listening.model import REFERENCE, Design, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from evalkit.reports.html import write_report

pytestmark = pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)

CONDITIONS = ("opus?application=audio&bitrate_kbps=6", "opus?application=audio&bitrate_kbps=12")


def _graded(report_run, folder, design: Design):
    prepare_test(report_run, folder, PrepareOptions(design, listeners=4, conditions=CONDITIONS))
    definition = load_definition(folder)
    rng = np.random.default_rng(5)
    base = {REFERENCE: 4.6, CONDITIONS[0]: 2.2, CONDITIONS[1]: 3.6}
    with ListeningStore(folder / "listening.sqlite") as store:
        for _ in range(4):
            p = store.create_participant(definition)
            for k, trial in enumerate(definition.trials_for(p.slot)):
                step = 1.0 if design is Design.ACR else 0.1
                store.submit(definition, p, k, scores={
                    s: float(np.clip(np.round((base[definition.stimuli[s].condition] + rng.normal(0, 0.5)) / step)
                                     * step, 1, 5)) for s in trial.stimuli})
    return folder


@pytest.mark.parametrize("design", [Design.ACR])  # BS.1116 takes the same path (tests/listening covers its report)
def test_report_shows_graded_results(report_run, tmp_path, design):
    folder = _graded(report_run, tmp_path / "test", design)
    analysis = analyze_test_dir(folder)
    html = write_report(report_run, folder, tmp_path / "r.html", examples=0).read_text()
    section = html.split('id="listening"')[1].split("</section>")[0]
    measure = "MOS" if design is Design.ACR else "difference grade"
    assert f"<th>{measure}</th><th>95 % CI (listeners)</th>" in section and "95 % CI (ratings, P.800)" in section
    rows = section.split("<tbody>")[1].split("</tbody>")[0]
    for name, s in analysis["conditions"].items():
        assert f"<td>{s['mean']:.2f}</td><td>[{s['ci_low']:.2f}, {s['ci_high']:.2f}]</td>" in rows, name
    assert (">Reference</td>" in rows) == (design is Design.ACR)  # BS.1116: the reference is the baseline
    assert "Paired comparisons" in section and section.count("<td class=\"txt\">mixed</td>") == len(
        analysis["comparisons"]) >= 1
