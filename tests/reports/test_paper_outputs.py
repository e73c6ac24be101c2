"""Paper-ready outputs of a small real run: ``evalkit summary --format latex|markdown|csv`` against values
computed by hand from the item results (Student t CIs for n = 3), and ``evalkit plot`` options (variant filter,
no title, size in inches, legend placement), distinct line styles within a family and plain bitrate ticks."""

from __future__ import annotations

import csv
import io
import math
import struct

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from scipy import stats

from evalkit.cli import main
from evalkit.reports import plots
from evalkit.reports.paper_table import latex_escape, paper_table
from evalkit.reports.plots.options import (
    FigureOptionError,
    FigureOptions,
    LegendPlacement,
    apply_options,
    select_variants,
)
from evalkit.reports.plots.style import distinct_styles, family_style
from evalkit.reports.rundata import load_run
from evalkit.reports.scoreboard import Cell, MetricColumn, Row, Scoreboard
from evalkit.runner.reader import RunReader
from tests.reports.conftest import make_report_run

CODECS = ["lowpass?cutoff_hz=3500", "opus?bitrate_kbps=6", "opus?bitrate_kbps=12",
          "opus?application=voip&bitrate_kbps=6", "opus?application=voip&bitrate_kbps=12"]
METRICS = ["si_sdr", "mel_distance"]
ANCHOR = "lowpass?cutoff_hz=3500"


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    return make_report_run(tmp_path_factory.mktemp("paper-run"), seconds=0.5, codecs=CODECS, metrics=METRICS)


def _by_hand(run_dir) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """(spec, metric) -> mean, Student-t 95 % CI, n, from the per-item values of results.parquet."""
    results = pd.read_parquet(run_dir / "results.parquet")
    out = {}
    for (spec, metric), g in results.groupby(["codec_spec", "metric"]):
        x = g["value"].to_numpy(float)
        half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
        out[spec, metric] = (x.mean(), x.mean() - half, x.mean() + half, len(x))
    return out


def _two(v: float) -> str:
    return f"{v:.2f}"


def _summary(capsys, run_dir, fmt: str) -> str:
    capsys.readouterr()
    assert main(["summary", str(run_dir), "--format", fmt]) == 0
    return capsys.readouterr().out


def _best(hand, metric: str, higher: bool) -> str:
    codecs = {s: v for (s, m), v in hand.items() if m == metric and s != ANCHOR}
    return (max if higher else min)(codecs, key=lambda s: codecs[s][0])


@pytest.mark.slow  # its paper_run, a real codec run
def test_markdown_summary_equals_hand_computed_means_cis_and_best(paper_run, capsys):
    hand = _by_hand(paper_run)
    assert {n for *_, n in hand.values()} == {3}
    text = _summary(capsys, paper_run, "markdown")
    lines = text.splitlines()
    assert lines[0] == "| Codec variant | kbps | SI-SDR (dB) ↑ | Mel distance (log10 mel L1 (sum of 7 scale means)) ↓ |"
    assert "n = 3 items per cell" in text and "(n=" not in text  # n the same everywhere: said once
    specs = sorted({s for s, _ in hand})
    labels = RunReader(paper_run).labels(specs)
    best = {"si_sdr": _best(hand, "si_sdr", True), "mel_distance": _best(hand, "mel_distance", False)}
    assert best["si_sdr"] != ANCHOR and hand[ANCHOR, "si_sdr"][0] > hand[best["si_sdr"], "si_sdr"][0]  # anchors never
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in lines[2:] if line.startswith("| ")}
    assert set(rows) == set(labels.values())
    for spec in specs:
        cells = rows[labels[spec]].strip("| ").split(" | ")[2:]
        for metric, cell in zip(METRICS, cells, strict=True):
            mean, lo, hi, _ = hand[spec, metric]
            shown = f"**{_two(mean)}**" if best[metric] == spec else _two(mean)
            assert cell == f"{shown} [{_two(lo)}, {_two(hi)}]", (spec, metric)
    assert text.count("**") == 2 * 2


@pytest.mark.slow  # its paper_run, a real codec run
def test_latex_summary_is_booktabs_escaped_with_bold_best(paper_run, capsys):
    hand = _by_hand(paper_run)
    text = _summary(capsys, paper_run, "latex")
    assert [line for line in text.splitlines() if line in ("\\toprule", "\\midrule", "\\bottomrule")] == [
        "\\toprule", "\\midrule", "\\bottomrule"]
    assert "\\begin{tabular}{lrcc}" in text and "\\hline" not in text
    assert "SI-SDR (dB) $\\uparrow$" in text and "$\\downarrow$" in text and "95 \\% CI" in text
    spec = _best(hand, "si_sdr", True)
    mean, lo, hi, _ = hand[spec, "si_sdr"]
    tex = lambda v: _two(v).replace("-", "$-$")  # noqa: E731
    assert f"\\textbf{{{tex(mean)}}} [{tex(lo)}, {tex(hi)}]" in text
    body = text.split("\\midrule")[1].split("\\bottomrule")[0]
    assert all(line.endswith("\\\\") and line.count(" & ") == 3 for line in body.strip().splitlines())


@pytest.mark.slow  # its paper_run, a real codec run
def test_csv_summary_has_full_precision_means_units_and_best(paper_run, capsys):
    hand = _by_hand(paper_run)
    rows = list(csv.DictReader(io.StringIO(_summary(capsys, paper_run, "csv"))))
    assert len(rows) == len(CODECS)
    for row in rows:
        mean, lo, hi, n = hand[row["codec_spec"], "si_sdr"]
        assert float(row["SI-SDR (dB) ↑ mean"]) == pytest.approx(mean, rel=1e-8)
        assert float(row["SI-SDR (dB) ↑ CI low"]) == pytest.approx(lo, rel=1e-6)
        assert float(row["SI-SDR (dB) ↑ CI high"]) == pytest.approx(hi, rel=1e-6)
        assert int(row["SI-SDR n"]) == n
        assert (row["SI-SDR best"] == "true") == (row["codec_spec"] == _best(hand, "si_sdr", True))
        assert (row["Mel distance best"] == "true") == (row["codec_spec"] == _best(hand, "mel_distance", False))


def test_latex_escapes_specials_and_n_shows_only_when_it_differs():
    assert latex_escape("p_x & 50% #1 $5 {a} ~^\\") == (
        "p\\_x \\& 50\\% \\#1 \\$5 \\{a\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}")
    columns = [MetricColumn("my_metric", "my_metric", "%", "%", True)]

    def board(n_b: int) -> Scoreboard:
        rows = [Row("a", "A & B_1", "A", "codec", 6.0, "pretrained", False, {"my_metric": Cell(0.5, 0.4, 0.6, 3, 0)}),
                Row("b", "C", "C", "codec", 12.0, "pretrained", False,
                    {"my_metric": Cell(-0.25, -0.5, 0.0, n_b, 0, best=True)})]
        return Scoreboard(columns, rows)

    text = paper_table(board(2), "latex")
    assert "A \\& B\\_1 & 6.00 & 0.50 [0.40, 0.60] ($n$=3) \\\\" in text
    assert "C & 12.00 & \\textbf{$-$0.25} [$-$0.50, 0.00] ($n$=2) \\\\" in text
    assert "my\\_metric (\\%) $\\uparrow$" in text
    same = paper_table(board(3), "latex")
    assert "$n$=" not in same and "n = 3 items per cell" in same
    assert "| A & B\\_1 | 6.00 | 0.50 [0.40, 0.60] (n=3) |" in paper_table(board(2), "markdown")


@pytest.mark.slow  # its paper_run, a real codec run
def test_summary_rejects_an_unknown_format(paper_run, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["summary", str(paper_run), "--format", "html"])
    assert exc.value.code == 2
    assert "invalid choice: 'html'" in capsys.readouterr().err


# figures


@pytest.fixture(scope="module")
def run(paper_run):
    return load_run(paper_run)


def _drawn(fig):
    FigureCanvasAgg(fig).draw()
    return fig


def _family_lines(fig) -> dict[str, object]:
    return {line.get_gid(): line for line in fig.axes[0].get_lines() if (line.get_gid() or "").startswith("family:")}


@pytest.mark.slow  # its paper_run, a real codec run
def test_curves_of_one_family_have_distinct_line_styles(run):
    fig = _drawn(plots.rate_quality_figure(run, "si_sdr"))
    lines = _family_lines(fig)
    assert set(lines) == {"family:opus", "family:opus:application=voip"}
    assert len({line.get_color() for line in lines.values()}) == 1  # one family's colour
    assert len({line.get_linestyle() for line in lines.values()}) == 2
    # two variants with other settings of one family (two beam=4 curves): dashed and then another dash pattern
    a, b = distinct_styles([family_style("qincodec-rvq:beam=4"), family_style("qincodec-rvq:beam=4,n_steps=16")])
    assert a.color == b.color and a.linestyle != b.linestyle and a.marker != b.marker


@pytest.mark.slow  # its paper_run, a real codec run
def test_bitrate_ticks_are_plain_numbers(run):
    fig = _drawn(apply_options(plots.rate_quality_figure(run, "si_sdr"), FigureOptions(size_in=(7.0, 3.0))))
    ax = fig.axes[0]
    major = [t.get_text() for t in ax.get_xticklabels()]
    assert major and all(t == f"{float(t):g}" for t in major), major
    assert [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()] == []
    # rates beyond the usual codec range (PCM 705.6 and 1411.2 kbps): two plain ticks, no "7×10²"
    from evalkit.reports.plots.run_figures import _bitrate_axis

    fig2 = plots.rate_quality_figure(run, "si_sdr")
    _bitrate_axis(fig2.axes[0], np.array([705.6, 1411.2]))
    texts = [t.get_text() for t in _drawn(fig2).axes[0].get_xticklabels()]
    assert texts == ["706", "1410"]


@pytest.mark.slow  # its paper_run, a real codec run
def test_size_no_title_and_legend_options(run):
    fig = _drawn(apply_options(plots.rate_quality_figure(run, "si_sdr"), FigureOptions(
        title=False, size_in=(6.0, 2.5), legend=LegendPlacement.OUTSIDE)))
    assert tuple(fig.get_size_inches()) == (6.0, 2.5)
    assert fig.axes[0].get_title() == ""
    (legend,) = fig.legends
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= fig.axes[0].get_window_extent(renderer).x1  # right of the axes
    assert {t.get_text() for t in legend.get_texts()} >= {"Opus", "3.5 kHz anchor"}
    bare = _drawn(apply_options(plots.rate_quality_figure(run, "si_sdr"), FigureOptions(legend=LegendPlacement.NONE)))
    assert bare.legends == [] and bare.axes[0].get_legend() is None
    assert bare.axes[0].get_title().startswith("SI-SDR")


@pytest.mark.slow  # its paper_run, a real codec run
def test_variants_keep_only_the_named_curves(run):
    narrowed = select_variants(run, ["Opus 12 kbps", "opus?bitrate_kbps=6", "opus?application=voip&bitrate_kbps=12"])
    assert set(narrowed.summary["codec_spec"]) == {"opus?application=audio&bitrate_kbps=12",
                                                   "opus?application=audio&bitrate_kbps=6",
                                                   "opus?application=voip&bitrate_kbps=12"}
    fig = plots.rate_quality_figure(narrowed, "si_sdr")
    lines = _family_lines(fig)
    assert sorted(len(line.get_xdata()) for line in lines.values()) == [1, 2]
    assert not any((line.get_gid() or "").startswith("anchor:") for line in fig.axes[0].get_lines())
    with pytest.raises(FigureOptionError, match="--variants: Opus 99 kbps not in this run; its variants: .*Opus 12"):
        select_variants(run, ["Opus 99 kbps"])


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow  # its paper_run, a real codec run
def test_plot_command_writes_the_size_in_inches(paper_run, tmp_path, capsys):
    out = tmp_path / "rq.png"
    assert main(["plot", "rate-quality", str(paper_run), "--metric", "si_sdr", "-o", str(out), "--size", "4,2.5",
                 "--no-title", "--legend", "outside", "--variants", "Opus 6 kbps", "Opus 12 kbps"]) == 0
    assert _png_size(out) == (4 * plots.PNG_DPI, 2.5 * plots.PNG_DPI)
    capsys.readouterr()
    assert main(["plot", "metric", str(paper_run), "--metric", "si_sdr", "-o", str(out), "--size", "4x2"]) == 2
    assert capsys.readouterr().err.strip() == "evalkit: error: --size 4x2: expected W,H in inches, e.g. 3.5,2.6"
