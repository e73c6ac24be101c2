"""Figures of a real small run (``report_run``) and of hand-made listening results: the plotted data are the
tables' values, axes carry units, random weights are flagged; the writers and the ``evalkit plot`` commands."""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from evalkit.cli import main
from evalkit.listening.analysis.report import mushra_report
from evalkit.listening.model import Rating
from evalkit.metrics import ALL_INFO
from evalkit.reports import plots
from evalkit.reports.rundata import load_run

OPUS = "opus?application=audio&bitrate_kbps=12"
RVQ8 = "qincodec-rvq?beam=1&bitrate_kbps=8&checkpoint=shipped&n_steps=8"
RANDOM_ENCODEC = "encodec-24khz?bandwidth=1.5&seed=0&weights=random"


@pytest.fixture(scope="module")
def run(report_run):
    return load_run(report_run)


def _flat(text: str) -> str:
    return " ".join(text.split())  # labels are wrapped at spaces


def _labelled(fig) -> None:
    assert any(ax.get_xlabel().strip() and ax.get_ylabel().strip() for ax in fig.axes)


def _lines(ax, prefix: str) -> dict[str, object]:
    return {line.get_gid().removeprefix(prefix): line for line in ax.get_lines()
            if (line.get_gid() or "").startswith(prefix)}


def _texts(fig) -> list[str]:
    legend = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    return legend + [t.get_text() for t in fig.texts] + ([fig._suptitle.get_text()] if fig._suptitle else [])


def _errorbar_points(ax, prefix: str) -> dict[str, tuple[float, float]]:
    """gid -> (x, y) of single-point markers (dot-and-whisker rows) whose gid starts with ``prefix``."""
    return {gid: (float(line.get_xdata()[0]), float(line.get_ydata()[0])) for gid, line in _lines(ax, prefix).items()}


@pytest.mark.parametrize(("spec", "label"), [
    ("opus?application=audio&bitrate_kbps=12", "Opus 12 kbps"),
    ("lowpass?cutoff_hz=3500", "3.5 kHz anchor"),
    ("encodec-24khz?bandwidth=1.5&seed=0&weights=random", "EnCodec 24 kHz 1.5 kbps (random weights)"),
    (RVQ8, "QinCodec RVQ 8 kbps"),
    ("klt?base=qincodec-rvq&bitrate_kbps=8&calibration=&calibration_s=60&checkpoint=shipped&dim=32"
     "&estimator=codebook&n_cov=2&n_steps=8", "QinCodec RVQ 8 kbps, KLT d=32"),
    ("reference", "Reference"),
    ("not a spec?b", "not a spec?b"),
])
def test_figures_use_the_shared_short_labels(spec, label):
    from evalkit.codecs.labels import short_label

    assert plots.short_label(spec) == short_label(spec) == label


def test_family_styles_are_stable_and_colour_blind_safe():
    palette = {*plots.OKABE_ITO.values(), plots.GREY}
    families = ["encodec-24khz", "dac-44khz", "qincodec", "qincodec-rvq", "opus", "aac", "mp3", "lowpass", "new"]
    styles = [plots.family_style(f) for f in families]
    assert all(s.color in palette for s in styles)
    assert len({(s.color, s.marker) for s in styles}) == len(families)
    assert plots.family_style("opus") == plots.family_style("opus")
    klt = plots.family_style("klt:qincodec-rvq:dim=32")
    assert (klt.color, klt.linestyle) == (plots.family_style("qincodec-rvq").color, "--")
    assert "32" in klt.label


def test_metric_label_keeps_unit_and_direction():
    unit = ALL_INFO["stft_distance"].unit
    label = plots.metric_label("stft_distance", unit, False, width=20)
    assert "\n" in label and unit in _flat(label) and label.endswith("↓ better")
    assert plots.metric_label("x", "", None) == "x"


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
@pytest.mark.parametrize("metric", ["si_sdr", "mel_distance", "dnsmos_ovrl"])
def test_rate_quality_figure_plots_the_table(run, metric):
    fig = plots.rate_quality_figure(run, metric)
    _labelled(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "kbps" in ax.get_xlabel()
    assert ALL_INFO[metric].unit in _flat(ax.get_ylabel())
    assert ("↑" if ALL_INFO[metric].higher_is_better else "↓") in ax.get_ylabel()
    rq = run.rate_quality[run.rate_quality["metric"] == metric]
    families = {gid.removesuffix("+random"): line for gid, line in _lines(ax, "family:").items()}
    assert set(families) == set(rq["family"]) and "lowpass" not in families
    assert "encodec-24khz:weights=random" in _lines(ax, "family:")  # random weights: a curve of their own
    for family, line in families.items():
        rows = rq[rq["family"] == family].sort_values("bitrate_kbps")
        np.testing.assert_allclose(line.get_xdata(), rows["bitrate_kbps"])
        np.testing.assert_allclose(line.get_ydata(), rows["mean"])
    # measured on the 0.6 s clips, not the nominal 6 / 12
    np.testing.assert_allclose(families["opus"].get_xdata(), [5.69778, 12.01778], rtol=1e-5)
    summary = run.summary[run.summary["metric"] == metric].set_index("codec_spec")["mean"]
    anchors = _lines(ax, "anchor:")
    expected = {"lowpass?cutoff_hz=3500", "lowpass?cutoff_hz=7000"} | ({"reference"} if metric == "dnsmos_ovrl"
                                                                        else set())
    assert set(anchors) == expected
    for spec, line in anchors.items():
        assert list(line.get_ydata()) == [summary[spec]] * 2
        assert line.get_linestyle() != "-"
    texts = _texts(fig)
    assert {"3.5 kHz anchor", "7 kHz anchor"} <= set(texts)
    assert [t for t in texts if "(random weights)" in t] == ["EnCodec 24 kHz (random weights)"]
    assert plots.RANDOM_NOTE in texts


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_rate_quality_figure_unknown_metric_names_the_valid_ones(run):
    with pytest.raises(ValueError, match="'pesq_wb' is not in the run's summary.*dnsmos_ovrl, mel_distance"):
        plots.rate_quality_figure(run, "pesq_wb")


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_perplexity_figure_one_line_per_variant_with_codes(run):
    fig = plots.perplexity_figure(run)
    _labelled(fig)
    ax = fig.axes[0]
    usage = run.codebook_usage
    lines = _lines(ax, "perplexity:")
    assert set(lines) == set(usage["codec_spec"]) and len(lines) == 4
    for spec, line in lines.items():
        rows = usage[usage["codec_spec"] == spec].sort_values("codebook")
        assert list(line.get_xdata()) == list(range(1, len(rows) + 1))
        np.testing.assert_allclose(line.get_ydata(), rows["perplexity"])
        depth = run.codebook_by_depth[run.codebook_by_depth["codec_spec"] == spec].sort_values("num_codebooks")
        np.testing.assert_allclose(np.cumsum(line.get_ydata()) / np.arange(1, len(rows) + 1),
                                   depth["mean_perplexity"])  # the by-depth table is the running mean
    ceiling = _lines(ax, "ceiling:")
    assert list(ceiling) == ["1024"] and list(ceiling["1024"].get_ydata()) == [1024, 1024]
    assert ceiling["1024"].get_linestyle() == "--" and ax.get_yscale() == "log"
    assert "perplexity" in ax.get_ylabel() and "codebook" in ax.get_xlabel()
    texts = _texts(fig)
    assert [t for t in texts if "random weights" in t and t != plots.RANDOM_NOTE] == [
        "EnCodec 24 kHz 1.5 kbps (random weights)"]
    assert plots.RANDOM_NOTE in texts
    assert lines[RANDOM_ENCODEC].get_markerfacecolor() == "white"


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_codebook_usage_figure_two_panels(run):
    fig = plots.codebook_usage_figure(run)
    _labelled(fig)
    top, bottom = fig.axes
    usage = run.codebook_usage
    for spec, line in _lines(bottom, "utilisation:").items():
        rows = usage[usage["codec_spec"] == spec].sort_values("codebook")
        np.testing.assert_allclose(line.get_ydata(), 100 * rows["utilisation"])
    assert "%" in bottom.get_ylabel() and "perplexity" in top.get_ylabel()
    assert len(_lines(top, "perplexity:")) == 4 and len(_lines(bottom, "utilisation:")) == 4


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
@pytest.mark.parametrize("metric", ["si_sdr", "stft_distance", "dnsmos_ovrl"])
def test_metric_figure_rows(run, metric):
    fig = plots.metric_figure(run, metric)
    _labelled(fig)
    ax = fig.axes[0]
    assert ALL_INFO[metric].unit in _flat(ax.get_xlabel())
    labels = [_flat(t.get_text()) for t in ax.get_yticklabels()]
    rows = run.summary[run.summary["metric"] == metric]
    assert len(labels) == rows["codec_spec"].nunique()
    assert labels[:2] == ["3.5 kHz anchor", "7 kHz anchor"]  # anchors first, at the top
    assert labels.index("QinCodec RVQ 8 kbps, KLT d=32") == labels.index("QinCodec RVQ 8 kbps") + 1
    assert labels.index("Opus 6 kbps") < labels.index("Opus 12 kbps")
    assert (labels[-1] == "Reference (uncoded)") == (metric == "dnsmos_ovrl")
    assert "EnCodec 24 kHz 1.5 kbps (random weights)" in labels
    points = _errorbar_points(ax, "variant:")
    means = rows.set_index("codec_spec")["mean"]
    assert points.keys() == set(means.index)
    for spec, (x, _) in points.items():
        assert x == pytest.approx(means[spec])
    assert plots.RANDOM_NOTE in _texts(fig)


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_klt_figures(run):
    fig = plots.klt_spectrum_figure(run)
    _labelled(fig)
    top, bottom = fig.axes
    spectra = run.klt_spectra.sort_values("index")
    (spec, line), = _lines(top, "spectrum:").items()
    np.testing.assert_allclose(line.get_ydata(), spectra["eigenvalue"])
    assert top.get_yscale() == "log"
    mark = _lines(bottom, "dim:")[spec]
    assert float(mark.get_xdata()[0]) == 32
    assert float(mark.get_ydata()[0]) == pytest.approx(100 * run.klt_accounting["variance_kept"].iloc[0])

    fig = plots.klt_metric_figure(run, "si_sdr")
    _labelled(fig)
    ax = fig.axes[0]
    means = run.summary[run.summary["metric"] == "si_sdr"].set_index("codec_spec")["mean"]
    klt_line = _lines(ax, "klt:")[RVQ8]
    assert list(klt_line.get_xdata()) == [32] and list(klt_line.get_ydata()) == [means[spec]]
    assert _errorbar_points(ax, "base:")[RVQ8] == pytest.approx((64, means[RVQ8]))
    assert "dB" in ax.get_ylabel()


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_nothing_to_plot_gives_none(run):
    empty = dataclasses.replace(run, codebook_usage=pd.DataFrame(), klt_spectra=pd.DataFrame(),
                                summary=run.summary[~run.summary["codec_spec"].str.startswith("klt?")],
                                rate_quality=run.rate_quality.iloc[:0])
    assert plots.perplexity_figure(empty) is None and plots.codebook_usage_figure(empty) is None
    assert plots.klt_spectrum_figure(empty) is None and plots.klt_metric_figure(empty, "si_sdr") is None
    assert plots.rate_quality_figure(empty, "si_sdr") is None
    assert plots.mushra_figure({"conditions": {}}) is None and plots.mushra_box_figure([]) is None
    assert plots.mushra_items_figure({"items": {}}) is None and plots.ab_figure({"pairs": []}) is None
    assert plots.correlation_figure(pd.DataFrame(), "si_sdr", "dB") is None


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_pretrained_only_run_has_no_random_flag(run):
    keep = {t: getattr(run, t)[getattr(run, t)["codec_spec"] != RANDOM_ENCODEC]
            for t in ("summary", "rate_quality", "codebook_usage", "codebook_by_depth", "units")}
    pretrained = dataclasses.replace(run, **keep)
    assert pretrained.random_specs == set()
    rq = plots.rate_quality_figure(pretrained, "si_sdr")
    assert set(_lines(rq.axes[0], "family:")) == {"opus", "qincodec-rvq", "klt:qincodec-rvq:dim=32"}
    for fig in (rq, plots.perplexity_figure(pretrained), plots.metric_figure(pretrained, "si_sdr"),
                plots.codebook_usage_figure(pretrained)):
        texts = _texts(fig) + [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
        assert texts and not [t for t in texts if "random" in t]


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_figures_leave_matplotlib_settings_alone(run, tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    plots.save_figure(plots.metric_figure(run, "si_sdr"), tmp_path / "m.svg")
    plots.figure_svg(plots.perplexity_figure(run), text_as_paths=False)
    assert dict(matplotlib.rcParams) == before


CONDITIONS = {"reference": 100, "anchor35": 20, "anchor70": 50, OPUS: 80, RVQ8: 65}
LABELS = {"reference": "Reference", "anchor35": "3.5 kHz anchor",
          "anchor70": "7 kHz anchor", OPUS: "Opus 12 kbps", RVQ8: "QinCodec RVQ 8 kbps"}


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(1)
    return [Rating(f"L{a}", f"item{i}", c, 100.0 if c == "reference" else float(np.clip(m + rng.normal(0, 8),
                                                                                       0, 100)))
            for a in range(6) for i in range(3) for c, m in CONDITIONS.items()]


def test_mushra_figures(ratings):
    report = mushra_report(ratings)
    assert report["assessors"] == 6
    fig = plots.mushra_figure(report)
    _labelled(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Reference", "Opus 12 kbps", "QinCodec RVQ 8 kbps", "7 kHz anchor",
                      "3.5 kHz anchor"]
    for name, (x, _) in _errorbar_points(ax, "condition:").items():
        assert x == pytest.approx(report["conditions"][name]["mean"])
    assert ax.get_xlim()[0] <= 0 and ax.get_xlim()[1] >= 100 and "0–100" in ax.get_xlabel()
    past = {**report, "conditions": {**report["conditions"], "reference": {
        **report["conditions"]["reference"], "ci_low": 95.0, "ci_high": 104.0}}}
    whiskers = [seg for c in plots.mushra_figure(past).axes[0].collections for seg in c.get_segments()]
    assert whiskers and max(x for seg in whiskers for x, _ in seg) == pytest.approx(100.0)  # not 104

    fig = plots.mushra_items_figure(report)
    _labelled(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["item0", "item1", "item2"]
    bars = {c.get_label(): c for c in ax.containers if c.get_label() in LABELS.values()}
    assert set(bars) == set(LABELS.values())
    for name, container in ((n, bars[LABELS[n]]) for n in CONDITIONS):
        heights = [p.get_height() for p in container.patches]
        assert heights == pytest.approx([report["items"][i][name]["mean"] for i in ("item0", "item1", "item2")])
    assert {"Opus 12 kbps", "Reference"} <= set(_texts(fig))

    fig = plots.mushra_box_figure(ratings)
    _labelled(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "Reference" and labels[0] == "3.5 kHz anchor"  # best at the top
    medians = _lines(ax, "median:")
    assert set(medians) == set(CONDITIONS)
    for name, line in medians.items():
        assert list(line.get_xdata()) == [np.median([r.score for r in ratings if r.condition == name])] * 2


def _pair(a, b, share, lo, hi, p):
    return {"a": a, "b": b, "n": 20, "prefer_a": 0, "prefer_b": 0, "no_preference": 0, "share": share,
            "ci_low": lo, "ci_high": hi, "p": p, "correct": None, "per_listener": {}}


def test_ab_and_abx_figures():
    report = {"design": "ab", "pairs": [_pair(OPUS, RVQ8, 0.7, 0.48, 0.85, 0.12),
                                        _pair("anchor70", "reference", None, None, None, None)]}
    fig = plots.ab_figure(report)
    _labelled(fig)
    ax = fig.axes[0]
    points = _errorbar_points(ax, "pair:")
    assert list(points) == [f"{OPUS}|{RVQ8}", "anchor70|reference"]
    assert points[f"{OPUS}|{RVQ8}"][0] == pytest.approx(70)
    assert np.isnan(points["anchor70|reference"][0])
    chance = _lines(ax, "chance")[""]
    assert list(chance.get_xdata()) == [50, 50]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "p = 0.12" in labels[0] and "no decisive answer" in labels[1]
    assert "no preference (50 %)" in _texts(fig)

    abx = plots.ab_figure({"design": "abx", "pairs": [_pair(OPUS, RVQ8, 0.9, 0.7, 0.97, 0.001)]})
    assert "correct" in abx.axes[0].get_xlabel() and "chance (50 %)" in _texts(abx)


def test_correlation_figure():
    rng = np.random.default_rng(2)
    rows = [{"item": f"i{k}", "condition": c, "listening_mean": m + rng.normal(0, 4),
             "metric_value": m / 10 + rng.normal(0, 0.5)} for k in range(4) for c, m in CONDITIONS.items()
            if c != "reference"]
    points = pd.DataFrame(rows)
    fig = plots.correlation_figure(points, "si_sdr", "dB")
    _labelled(fig)
    ax = fig.axes[0]
    assert "dB" in ax.get_xlabel()
    scatters = {c.get_gid().removeprefix("condition:"): c for c in ax.collections}
    assert set(scatters) == set(points["condition"])
    for name, sc in scatters.items():
        group = points[points["condition"] == name]
        np.testing.assert_allclose(sc.get_offsets(), group[["metric_value", "listening_mean"]].to_numpy())
    assert len({tuple(sc.get_facecolor()[0]) + (sc.get_paths()[0].vertices.tobytes(),)
                for sc in scatters.values()}) == len(scatters)  # opus 6 and 12 share a colour, not a marker
    r = np.corrcoef(points["metric_value"], points["listening_mean"])[0, 1]
    assert f"r = {r:.2f}" in ax.get_title()


@pytest.fixture(scope="module")
def small_figure(run):
    return plots.rate_quality_figure(run, "si_sdr")


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_save_figure_formats(small_figure, tmp_path):
    png = plots.save_figure(small_figure, tmp_path / "f.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png.read_bytes()[16:20], "big")
    assert width == round(plots.COLUMN_IN * plots.PNG_DPI)
    svg = plots.save_figure(small_figure, tmp_path / "f.SVG").read_text()
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    urls = set(re.findall(r"https?://[^\"'\s)]*", svg))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert all(f'xmlns{":xlink" if "xlink" in u else ""}="{u}"' in svg for u in urls)
    assert "<text" not in svg and "@font-face" not in svg and "url(" not in svg.replace("url(#", "")
    assert plots.save_figure(small_figure, tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    for bad in ("f.jpg", "f"):
        with pytest.raises(ValueError, match=rf"{bad}: unsupported figure format .*\.png, \.svg, \.pdf"):
            plots.save_figure(small_figure, tmp_path / bad)
    assert not (tmp_path / "f.jpg").exists()


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_inline_svg_and_png_uri(small_figure):
    svg = plots.figure_svg(small_figure)
    assert svg.startswith("<svg") and "<!DOCTYPE" not in svg and "<?xml" not in svg
    assert svg == plots.figure_svg(small_figure)  # no timestamp: the same figure gives the same text
    text_svg = plots.figure_svg(small_figure, text_as_paths=False)
    assert "<text" in text_svg and "DejaVu Sans" in text_svg
    assert "SI-SDR (dB), ↑ better" in text_svg and "random weights: not a pretrained model" in text_svg
    uri = plots.figure_png_data_uri(small_figure)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG"


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
@pytest.mark.parametrize(("argv", "name"), [(["perplexity"], "p.png"), (["rate-quality", "--metric", "si_sdr"],
                                                                     "rq.svg"),
                                           (["metric", "--metric", "dnsmos_ovrl"], "m.pdf")])
def test_cli_writes_the_figure(report_run, tmp_path, capsys, argv, name):
    out_file = tmp_path / name
    code, out, err = _cli(["plot", argv[0], str(report_run), *argv[1:], "-o", str(out_file)], capsys)
    assert (code, out, err) == (0, f"{out_file}\n", "")
    assert out_file.stat().st_size > 1000


@pytest.mark.slow  # the session's report_run, a real codec run (minutes on CPU)
def test_cli_errors(report_run, tmp_path, capsys):
    def error(argv):
        code, out, err = _cli(["plot", *argv], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("evalkit: error: ")
        return err

    assert "--metric pesq_wb: not in the summary" in error(
        ["rate-quality", str(report_run), "--metric", "pesq_wb", "-o", str(tmp_path / "x.png")])
    assert "its metrics: dnsmos_ovrl, mel_distance, si_sdr, stft_distance" in error(
        ["metric", str(report_run), "--metric", "nope", "-o", str(tmp_path / "x.png")])
    assert re.search(r"x\.jpg: unsupported figure format \.jpg; expected \.png, \.svg, \.pdf",
                     error(["perplexity", str(report_run), "-o", str(tmp_path / "x.jpg")]))
    assert "no such run folder" in error(["perplexity", str(tmp_path / "missing"), "-o", str(tmp_path / "x.png")])
    assert "cannot write" in error(["perplexity", str(report_run), "-o", str(tmp_path / "no" / "dir" / "x.png")])

    no_codes = tmp_path / "no-codes"
    shutil.copytree(report_run, no_codes, ignore=shutil.ignore_patterns("cache"))
    (no_codes / "codebook_usage.csv").write_text("")
    assert "no codebook usage" in error(["perplexity", str(no_codes), "-o", str(tmp_path / "x.png")])
    assert not list(tmp_path.glob("x.*"))


def test_plot_cli_imports_no_matplotlib():
    code = ("import sys, evalkit.cli.plot; "
            "print(sorted(m for m in ('matplotlib', 'pandas') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
