"""The listening report and admin page (issue 27, point 8): p-values below 0.0001 print as "< 0.0001", the HTML
names the test folder without its absolute path, an assessor is listed once, and AB/ABX answer counts are named
by what was chosen."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pytest

from evalkit.cli import main
from evalkit.listening.model import STORE_FILE, Design, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from tests.listening.storage.test_storage import _events


def _listening_section(run_dir, folder, tmp_path) -> str:
    from evalkit.reports.html import write_report

    html = write_report(run_dir, folder, tmp_path / "report.html", examples=0).read_text()
    return html.split('<section id="listening">')[1].split("</section>")[0]


def test_report_has_no_absolute_test_path_and_lists_each_assessor_once(run_dir, panel_dir, tmp_path):
    section = _listening_section(run_dir, panel_dir, tmp_path)
    assert str(panel_dir) not in section and str(panel_dir.parent) not in section
    assert f"Test folder <code>{panel_dir.name}</code>" in section
    screening = section.split("Post-screening")[1].split("</table>")[0]
    assert screening.count(">L005<") == 1  # unfinished, so excluded: one row
    assert "unfinished: 1 of 2 trials" in screening


def test_p_values_below_the_floor_print_as_less_than(panel_dir):
    from evalkit.listening.analysis.report import format_report
    from evalkit.reports.listening_data import load_test
    from evalkit.reports.listening_section import listening_context

    data = load_test(panel_dir)
    analysis = dict(data.analysis)
    analysis["comparisons"] = [{**c, "p": 3e-9, "p_holm": 2e-5} for c in analysis["comparisons"]]
    ctx = listening_context(dataclasses.replace(data, analysis=analysis))
    assert {(c["p"], c["p_holm"]) for c in ctx["comparisons"]} == {("< 0.0001", "< 0.0001")}
    text = format_report(analysis)
    assert "< 0.0001" in text and "0.0000" not in text and "e-0" not in text


    for p in (0.5, 1e-4, 0.99994):  # the floor itself and values that round to it keep four decimals
        assert f"{p:.4f}" in format_report({**analysis, "comparisons": [{**c, "p": p, "p_holm": p}
                                                                        for c in analysis["comparisons"]]})


@pytest.fixture(scope="module")
def abx_dir(run_dir, tmp_path_factory):
    """An ABX test, 3 listeners; listener k answers "A" in trial t when (t + k) is even, else "B"."""
    out = tmp_path_factory.mktemp("abx") / "test"
    prepare_test(run_dir, out, PrepareOptions(Design.ABX, items=2, listeners=3, repeats=2))
    definition = load_definition(out)
    with ListeningStore(out / STORE_FILE) as store:
        for k in range(3):
            p = store.create_participant(definition)
            for t, trial in enumerate(definition.trials_for(p.slot)):
                store.submit(definition, p, t, answer="A" if (t + k) % 2 == 0 else "B", events=_events(trial))
    return out


def _hand_counts(folder) -> dict[str, Counter]:
    """Per listener: answers that judged X to be each condition, and the correct ones, from the raw store."""
    with ListeningStore(folder / STORE_FILE) as store:
        choices = store.choices()
    out: dict[str, Counter] = {}
    for c in choices:
        out.setdefault(c.assessor, Counter())[c.chosen] += 1
        out[c.assessor]["correct"] += c.chosen == c.x
    return out


def test_abx_text_names_the_count_columns_by_the_answer(abx_dir, capsys):
    assert main(["listen", "analyze", str(abx_dir)]) == 0
    text = capsys.readouterr().out
    definition = load_definition(abx_dir)
    (a, b), = definition.pairs
    la, lb = definition.labels[a], definition.labels[b]
    header = next(line for line in text.splitlines() if line.strip().startswith("listener"))
    assert re.split(r"\s{2,}", header.strip()) == ["listener", f"X = {la}", f"X = {lb}", "correct",
                                                    "share correct", "p", "discriminates"]
    assert "prefer" not in text and "no_preference" not in text
    counts = _hand_counts(abx_dir)
    rows = {cells[0]: cells[1:4] for cells in (re.split(r"\s{2,}", line.strip()) for line in text.splitlines())
            if cells[0] in counts}
    assert rows == {who: [str(c[a]), str(c[b]), str(c["correct"])] for who, c in counts.items()}


def test_ab_text_names_the_preferred_condition(run_dir, tmp_path, capsys):
    out = tmp_path / "ab"
    prepare_test(run_dir, out, PrepareOptions(Design.AB, items=2, listeners=2))
    definition = load_definition(out)
    with ListeningStore(out / STORE_FILE) as store:
        for k in range(2):
            p = store.create_participant(definition)
            for t, trial in enumerate(definition.trials_for(p.slot)):
                store.submit(definition, p, t, answer=("A", "B", "none")[(t + k) % 3], events=_events(trial))
    assert main(["listen", "analyze", str(out)]) == 0
    text = capsys.readouterr().out
    (a, b), = definition.pairs
    la, lb = definition.labels[a], definition.labels[b]
    header = next(line for line in text.splitlines() if line.strip().startswith("listener"))
    assert re.split(r"\s{2,}", header.strip()) == ["listener", f"prefer {la}", f"prefer {lb}", "no preference",
                                                    f"share preferring {la}", "p"]


def test_abx_report_table_says_what_each_count_means(run_dir, abx_dir, tmp_path):
    section = _listening_section(run_dir, abx_dir, tmp_path)
    head = section.split("<thead>")[1].split("</thead>")[0]
    assert re.findall(r"<th[^>]*>([^<]*)</th>", head) == ["a", "b", "n", "X = a", "X = b", "correct",
                                                          "share correct", "95 % CI", "p"]
    definition = load_definition(abx_dir)
    (a, b), = definition.pairs
    total = Counter()
    for c in _hand_counts(abx_dir).values():
        total += c
    row = section.split("<tbody>")[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[3:6] == [str(total[a]), str(total[b]), str(total["correct"])]
    assert f"Test folder <code>{abx_dir.name}</code>" in section and str(abx_dir) not in section
