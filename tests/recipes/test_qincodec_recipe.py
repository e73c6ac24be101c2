"""The QinCodec recipe at tiny scale, end to end through ``evalkit reproduce``'s driver: every figure and table is
produced and on the page; the MUSHRA folder holds exactly the paper's conditions; simulated answers give Fig. 2;
the objective table, the paired tests and Fig. 3 agree with the run's own item scores and codebook usage computed
here; Fig. 4 has one curve per trained latent dimension. The fast tests check the pieces on hand-made data."""

from __future__ import annotations

import base64
import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.recipes import qincodec, qincodec_latent, qincodec_outputs
from evalkit.recipes.page import write_page
from evalkit.recipes.run import reproduce

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DAC8, DAC16 = "dac-44khz?n_codebooks=9&seed=0&weights=random", "dac-44khz-16kbps?n_codebooks=18&seed=0&weights=random"
Q8 = "qincodec?beam=0&bitrate_kbps=8&candidates=0&checkpoint=shipped&n_steps=8"
Q16 = "qincodec?beam=0&bitrate_kbps=16&candidates=0&checkpoint=shipped&n_steps=16"
ANCHOR = "lowpass?cutoff_hz=3500"


def _shipped_has_irvq() -> bool:
    from evalkit.codecs.qincodec.checkpoint import read_header

    return "irvq" in read_header("shipped")["parts"]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVALKIT_OFFLINE", "1")
        out = tmp_path_factory.mktemp("qincodec_recipe")
        result = reproduce("qincodec", out, scale="tiny")
    return out, result, {a.key: a for a in result.artifacts}


def _t_interval(values) -> tuple[float, float, float]:
    x = np.asarray(values, float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean(), x.mean() - half, x.mean() + half


@pytest.mark.slow
def test_tiny_reproduce_produces_every_figure_and_table_and_puts_each_on_the_page(done):
    out, result, artifacts = done
    metrics = qincodec.TINY_METRICS
    expected = {"run", "fig2_mushra_test", "fig3_perplexity", "objective_table", "objective_paired", "fig4_run",
                *(f"fig4_latent_{m}" for m in metrics)}
    irvq = "unavailable:qincodec-irvq?bitrate_kbps=16"
    assert set(artifacts) == expected | (set() if _shipped_has_irvq() else {irvq})
    html = result.page.read_text(encoding="utf-8")
    for a in artifacts.values():
        assert a.path.exists(), a.key
        if a.kind == "unavailable":
            assert f"<code>{a.title}</code>: " in html  # listed with its reason
            continue
        assert f'id="{a.key}"' in html, a.key
        if a.kind == "figure":
            data = a.path.read_bytes()
            assert data[:8] == PNG_MAGIC and base64.b64encode(data).decode() in html, a.key
        if a.key.startswith("fig4"):
            assert "NOT the paper's models" in a.title  # tiny trained checkpoints, said so
        elif a.kind != "unavailable":
            assert "random weights" in a.title, a.key  # DAC and EnCodec ran with random weights
    for suffix in (".md", ".csv", ".tex", ".html"):
        assert (out / "tables" / f"objective_table{suffix}").stat().st_size > 0
    assert artifacts["fig3_perplexity"].paper.source.startswith("Lahrichi et al., arXiv:2503.19597")


@pytest.mark.slow
def test_the_mushra_folder_holds_exactly_dac_and_qincodec_at_8_and_16_kbps_with_the_anchors(done):
    _, _, artifacts = done
    definition = json.loads((artifacts["fig2_mushra_test"].path / "test.json").read_text())
    assert definition["design"] == "mushra"
    assert set(definition["conditions"]) == {DAC8, DAC16, Q8, Q16, "anchor35", "anchor70"}
    assert definition["conditions"]["anchor35"] == ANCHOR  # the run's own 3.5 kHz anchor
    assert len(definition["items"]) == qincodec.TINY_CLIPS
    assert f"evalkit listen serve {artifacts['fig2_mushra_test'].path}" in artifacts["fig2_mushra_test"].note


@pytest.mark.slow
def test_simulated_answers_give_fig2_with_the_listen_analyze_means_and_t_cis(done, tmp_path):
    out, _, artifacts = done
    definition = json.loads((artifacts["fig2_mushra_test"].path / "test.json").read_text())
    rng = np.random.default_rng(3)
    level = {"reference": 97, "anchor35": 25, "anchor70": 45, DAC8: 30, DAC16: 35, Q8: 60, Q16: 70}
    rows = [{"assessor": f"p{a}", "item": item, "condition": c,
             "score": int(np.clip(level[c] + rng.normal(0, 3 if c == "reference" else 8), 0, 100))}
            for a in range(8) for item in definition["items"] for c in ["reference", *definition["conditions"]]]
    ratings = tmp_path / "answers.csv"
    with ratings.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["assessor", "item", "condition", "score"])
        writer.writeheader()
        writer.writerows(rows)
    with pytest.MonkeyPatch.context() as mp:  # a rerun into the same folder: every unit and checkpoint reused
        mp.setenv("EVALKIT_OFFLINE", "1")
        rerun = {a.key: a for a in qincodec.build(out, scale="tiny", ratings=ratings)}
    fig2 = rerun["fig2_mushra"]
    assert fig2.path.read_bytes()[:8] == PNG_MAGIC and "8 assessors" in fig2.note
    assert rerun["fig2_mushra_test"].path == artifacts["fig2_mushra_test"].path  # the same test folder, kept
    report = json.loads((out / "tables" / "fig2_mushra_analysis.json").read_text())
    frame = pd.DataFrame(rows)
    for condition, per in frame.groupby("condition"):
        mean, low, high = _t_interval(per.groupby("assessor")["score"].mean())
        got = report["conditions"][condition]
        assert got["mean"] == pytest.approx(mean)
        assert got["ci_low"] == pytest.approx(max(low, 0)) and got["ci_high"] == pytest.approx(min(high, 100))
    page = write_page("qincodec", list(rerun.values()), "tiny", out).read_text()
    assert 'id="fig2_mushra"' in page and base64.b64encode(fig2.path.read_bytes()).decode() in page


@pytest.mark.slow
def test_fig3_draws_the_deepest_variant_of_each_family_the_run_has(done):
    out, _, artifacts = done
    usage = pd.read_csv(out / "run" / "codebook_usage.csv")
    depth = usage.groupby("codec_spec")["codebook"].count()
    note = artifacts["fig3_perplexity"].note
    assert depth.to_dict() == {DAC8: 9, DAC16: 18, Q8: 8, Q16: 16, "encodec-24khz?bandwidth=12&seed=0&weights=random":
                               16, **({"qincodec-irvq?beam=0&bitrate_kbps=16&checkpoint=shipped&n_steps=16": 16}
                                      if _shipped_has_irvq() else {})}
    for label in ("EnCodec 24 kHz 12 kbps (random weights) (16 codebooks)",
                  "DAC 44.1 kHz (16 kbps model) 15.5 kbps (random weights) (18 codebooks)",
                  "QinCodec 16 kbps (16 codebooks)"):
        assert label in note
    assert "7.75" not in note and "QinCodec 8 kbps" not in note  # only the deepest of each family
    assert ("not drawn (unavailable): qincodec-irvq" in note) != _shipped_has_irvq()


@pytest.mark.slow
def test_the_objective_table_is_the_item_mean_with_its_t_interval(done):
    out, _, _ = done
    results = pd.read_csv(out / "run" / "results.csv")
    table = pd.read_csv(out / "tables" / "objective_table.csv").set_index("codec_spec")
    assert set(table.index) == {ANCHOR, DAC8, DAC16, Q8, Q16} | (
        {"qincodec-irvq?beam=0&bitrate_kbps=16&checkpoint=shipped&n_steps=16"} if _shipped_has_irvq() else set())
    headers = {"mel_distance": "Mel distance", "stft_distance": "STFT distance", "si_sdr": "SI-SDR"}
    for metric, name in headers.items():
        column = next(c for c in table.columns if c.startswith(name) and c.endswith(" mean"))
        for spec, row in table.iterrows():
            values = results[(results["codec_spec"] == spec) & (results["metric"] == metric)]["value"]
            mean, low, high = _t_interval(values)  # 3 items: Student's t interval
            stem = column.removesuffix(" mean")
            assert row[column] == pytest.approx(mean, rel=1e-6)
            assert row[f"{stem} CI low"] == pytest.approx(low, rel=1e-6)
            assert row[f"{stem} CI high"] == pytest.approx(high, rel=1e-6)


@pytest.mark.slow
def test_the_paired_tests_are_qincodec_against_dac_at_equal_bitrate_and_each_codec_against_the_anchor(done):
    out, _, _ = done
    paired = pd.read_csv(out / "tables" / "objective_paired.csv")
    mel = paired[paired["metric"].str.startswith("Mel distance")]
    pairs = set(zip(mel["a"], mel["b"], strict=True))
    dac8, dac16 = "DAC 44.1 kHz 7.75 kbps (random weights)", "DAC 44.1 kHz (16 kbps model) 15.5 kbps (random weights)"
    expected = {("QinCodec 8 kbps", dac8), ("QinCodec 16 kbps", dac16)} | {
        (c, "3.5 kHz anchor") for c in ("QinCodec 8 kbps", "QinCodec 16 kbps", dac8, dac16)}
    assert expected <= pairs and all(b != "QinCodec 8 kbps" for _, b in pairs)
    results = pd.read_csv(out / "run" / "results.csv")
    mel_values = results[results["metric"] == "mel_distance"].pivot(index="item_id", columns="codec_spec",
                                                                     values="value")
    row = mel[(mel["a"] == "QinCodec 8 kbps") & (mel["b"] == dac8)].iloc[0]
    assert row["n"] == qincodec.TINY_CLIPS
    assert float(row["mean a − b"]) == pytest.approx((mel_values[Q8] - mel_values[DAC8]).mean(), rel=1e-2)


@pytest.mark.slow
def test_fig4_has_one_curve_per_trained_latent_dimension(done):
    from evalkit.codecs.qincodec.checkpoint import read_header
    from evalkit.training.qincodec.recipes import get_config

    out, _, artifacts = done
    summary = pd.read_csv(out / "run-latent" / "summary.csv")
    by_checkpoint = summary.assign(checkpoint=summary["codec_spec"].str.extract(r"checkpoint=([^&]+)")[0])
    for dim in qincodec_latent.TINY_DIMS:
        path = str(out / "checkpoints" / f"d{dim}" / "qincodec.pt")
        header = read_header(path)
        assert header["config"]["model"]["latent_dim"] == dim == header["config"]["quantizer"]["embed_dim"]
        default = get_config("tiny").model.latent_dim  # the recipe's own dimension needs no option
        assert (f"--latent-dim {dim}" in header["provenance"]["command"]) == (dim != default)
        rates = by_checkpoint[(by_checkpoint["checkpoint"] == path) & (by_checkpoint["metric"] == "mel_distance")]
        assert sorted(rates["bitrate_kbps"]) == pytest.approx([0.4, 0.8, 1.2, 1.6])
    assert artifacts["fig4_latent_mel_distance"].note == "curves: D = 4; D = 8; D = 16"


# ------------------------------------------------------------------------------------------------- fast tests


def _fake_run(records: dict[str, SimpleNamespace]) -> SimpleNamespace:
    return SimpleNamespace(record=lambda spec: records[spec])


def test_paired_pairs_put_qincodec_first_and_match_bitrates_to_the_papers_8_and_16_kbps():
    records = {"dac8": SimpleNamespace(family="dac-44khz", nominal_kbps=7.75, anchor_cutoff_hz=None),
               "dac16": SimpleNamespace(family="dac-44khz-16kbps", nominal_kbps=15.5, anchor_cutoff_hz=None),
               "q8": SimpleNamespace(family="qincodec", nominal_kbps=8.0, anchor_cutoff_hz=None),
               "q16": SimpleNamespace(family="qincodec", nominal_kbps=16.0, anchor_cutoff_hz=None),
               "lp": SimpleNamespace(family="x", nominal_kbps=None, anchor_cutoff_hz=3500.0)}
    pairs = qincodec_outputs.paired_pairs(_fake_run(records), ["lp", "dac8", "dac16", "q8", "q16"], ("qincodec",))
    assert pairs == [("q8", "dac8"), ("q16", "dac16"), ("q8", "lp"), ("q16", "lp"), ("dac8", "lp"), ("dac16", "lp")]


def test_the_tiny_config_gives_random_weights_only_to_families_that_take_them(tmp_path):
    import yaml

    raw = yaml.safe_load(qincodec.CONFIG.read_text(encoding="utf-8"))
    cfg = qincodec.run_config(raw, tmp_path, "tiny", tmp_path / "clips")
    weights = {g["family"]: g["params"].get("weights") for g in cfg["codecs"]}
    assert weights == {"lowpass": None, "dac-44khz": "random", "dac-44khz-16kbps": "random", "qincodec": None,
                       "qincodec-irvq": None, "encodec-24khz": "random"}
    assert cfg["metrics"] == list(qincodec.TINY_METRICS) and cfg["output"] == str(tmp_path / "run")
    assert qincodec.run_config(raw, tmp_path, "full")["codecs"] == raw["codecs"]


def test_full_scale_fig4_uses_the_shipped_checkpoint_and_reports_the_missing_with_their_command(tmp_path):
    ckpt = tmp_path / qincodec_latent.FULL_CHECKPOINTS[32]
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    found, missing = qincodec_latent.full_checkpoints(tmp_path)
    assert found == {32: str(ckpt), 64: "shipped"}
    assert list(missing) == ["Fig. 4 latent dimension 128"]
    assert ("evalkit qincodec train --data data/train --out runs/papers/qincodec-latent/d128 --config small "
            "--latent-dim 128") in missing["Fig. 4 latent dimension 128"]


def test_fig4_curves_are_relabelled_by_latent_dimension_recoloured_and_ordered():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    for curve in ("qincodec:checkpoint=/b.pt", "qincodec:checkpoint=/a.pt"):
        ax.errorbar([1, 2], [1, 2], yerr=[0.1, 0.1], fmt="none", ecolor="green", capsize=2)
        ax.plot([1, 2], [1, 2], color="green", label=f"QinCodec ({curve})", gid=f"family:{curve}")
    fig.legend(loc="outside lower center")
    qincodec_latent._relabel(fig, {"family:qincodec:checkpoint=/b.pt": "latent D = 16",
                                   "family:qincodec:checkpoint=/a.pt": "latent D = 4"})
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["latent D = 4", "latent D = 16"]
    lines = [line for line in ax.get_lines() if line.get_gid()]  # the curves (the caps are lines too)
    assert len(lines) == 2 and lines[0].get_color() != lines[1].get_color()
    from matplotlib.colors import to_rgba

    for container, line in zip(ax.containers, lines, strict=True):  # each curve's error bars and caps follow it
        bars, caps = container.get_children()[-1], container.get_children()[:-1]
        assert tuple(bars.get_color()[0]) == to_rgba(line.get_color())
        assert caps and all(to_rgba(c.get_markeredgecolor()) == to_rgba(line.get_color()) for c in caps)
