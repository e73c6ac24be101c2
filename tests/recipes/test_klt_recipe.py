"""The KLT recipe at tiny scale: every figure, table and AB folder is produced, the AB folders hold exactly the
designed pairs, and the storage table equals hand computation from the codebook sizes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from evalkit.cli import main
from evalkit.recipes import klt

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``evalkit reproduce klt --scale tiny`` through the shared driver (the recipe, then its page)."""
    from evalkit.recipes.run import reproduce

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVALKIT_OFFLINE", "1")
        out = tmp_path_factory.mktemp("klt_recipe")
        done = reproduce("klt", out, scale="tiny")
    return out, {a.key: a for a in done.artifacts}


def _tiny_grid():
    """(family, bitrate, d̃) of the KLT variants the tiny scale keeps: the first and last bitrate of each grid."""
    raw = yaml.safe_load(klt.CONFIG.read_text(encoding="utf-8"))
    grids = [g["params"] for g in raw["codecs"] if g["family"] == "klt"]
    out = []
    for params in grids:
        name = "bandwidth" if "bandwidth" in params else "n_codebooks"
        for value in (params[name][0], params[name][-1]):
            out += [(params["base"], name, value, dim) for dim in params["dim"]]
    return out


@pytest.mark.slow
def test_tiny_build_produces_every_figure_table_and_ab_folder(built):
    out, artifacts = built
    metrics = klt.TINY_METRICS
    expected = {"run", "storage_table", "eigen_spectrum_encodec-24-khz", "eigen_spectrum_dac-24-khz"}
    expected |= {f"rate_quality_{family}_{m}" for family in ("encodec-24-khz", "dac-24-khz") for m in metrics}
    kbps = {("encodec-24khz", 1.5): "1.5", ("encodec-24khz", 24): "24", ("dac-24khz", 2): "1.5",
            ("dac-24khz", 32): "24"}  # DAC 24 kHz: 75 Hz x 10 bit x n codebooks
    family = {"encodec-24khz": "encodec-24-khz", "dac-24khz": "dac-24-khz"}
    expected |= {f"ab_{family[base]}_{kbps[(base, value)]}kbps_d{dim}" for base, _, value, dim in _tiny_grid()}
    assert set(artifacts) == expected
    for a in artifacts.values():
        assert a.path.exists(), a.key
        if a.kind == "figure":
            assert a.path.read_bytes()[:8] == PNG_MAGIC
        if a.kind != "run":
            assert "random" in (a.title + a.note).lower(), a.key  # random weights are labelled
    for suffix in (".csv", ".md", ".html"):
        assert (out / "tables" / f"storage_complexity{suffix}").stat().st_size > 0
    assert artifacts["storage_table"].paper.values == {"encodec_24khz_d72_storage_saving_pct": 43.4}
    page = (out / "index.html").read_text(encoding="utf-8")
    assert all(f'id="{key}"' in page for key in artifacts)  # every output on the page
    assert "<td>encodec_24khz_d72_storage_saving_pct</td><td>43.4</td>" in page  # beside the paper's number


@pytest.mark.slow
def test_ab_folders_hold_exactly_the_truncation_against_its_base(built, capsys):
    _, artifacts = built
    ab = [a for a in artifacts.values() if a.kind == "listening"]
    assert len(ab) == len(_tiny_grid())
    for a in ab:
        definition = json.loads((a.path / "test.json").read_text(encoding="utf-8"))
        (pair,) = definition["pairs"]
        variant, base = pair
        assert variant.startswith("klt?") and f"dim={a.key.rsplit('_d', 1)[1]}&" in variant
        assert not base.startswith("klt?") and set(definition["conditions"]) == {variant, base}
        assert definition["design"] == "ab" and len(definition["slots"]) == klt.PAPER_LISTENERS
        answers = len(definition["items"])
        assert main(["listen", "plan", "--design", "ab", "--answers", str(answers), "--preference",
                     str(klt.PLANNED_SHARE), "--listeners", str(klt.PAPER_LISTENERS), "--sims",
                     str(klt.POWER_SIMS), "--json"]) == 0
        power = json.loads(capsys.readouterr().out)["power"]
        assert f"power {power:.2f}" in a.note and f"{klt.PAPER_LISTENERS} listener slots" in a.note


@pytest.mark.slow
def test_storage_table_equals_hand_computation_from_codebook_sizes(built):
    out, _ = built
    table = pd.read_csv(out / "tables" / "storage_complexity.csv")
    encodec = table[table["codec"] == "EnCodec 24 kHz"]
    assert sorted(set(encodec["d̃"])) == [64, 72]
    n, k, d = 32, 1024, 128  # EnCodec 24 kHz stores 32 codebooks of 1024 codewords in D = 128
    for dim, row in encodec.set_index("d̃", drop=False).iterrows():
        base = n * k * d
        truncated = n * k * dim + d * d + d  # reduced codebooks + the D x D transform (as the paper counts) + mean
        assert row["total floats, base"] == base
        assert row["total floats, KLT (transform D x D)"] == truncated
        assert row["storage saving % (transform D x D)"] == round(100 * (1 - truncated / base), 2)
    row72 = encodec[encodec["d̃"] == 72].iloc[0]
    assert row72["storage saving % (transform D x D)"] == 43.36  # 1 - 2,375,808 / 4,194,304
    dac = table[table["codec"] == "DAC 24 kHz"]
    c, big_d = 8, 1024  # 8-d codebooks, 1024-d latent: codebooks unchanged, the projections shrink
    for _, row in dac.iterrows():
        dim = row["d̃"]
        assert row["codebook floats, KLT"] == row["codebook floats, base"] == n * k * c
        assert row["projection floats, base"] == n * (2 * c * big_d + 2 * c + 2 * big_d)
        assert row["projection floats, KLT"] == n * (2 * c * dim + c + dim)


def test_tiny_config_keeps_first_and_last_bitrate_random_weights_and_every_truncation(tmp_path):
    raw = yaml.safe_load(klt.CONFIG.read_text(encoding="utf-8"))
    cfg = klt.run_config(raw, tmp_path, "tiny", tmp_path / "clips")
    assert cfg["output"] == str(tmp_path / "run") and cfg["dataset"] == {"folder": str(tmp_path / "clips")}
    for grid, original in zip(cfg["codecs"], raw["codecs"], strict=True):
        assert grid["params"]["weights"] == "random"
        for name in klt.BITRATE_PARAMS:
            if name in original["params"]:
                assert grid["params"][name] == [original["params"][name][0], original["params"][name][-1]]
        assert grid["params"].get("dim") == original["params"].get("dim")
    assert klt.run_config(raw, tmp_path, "full")["codecs"] == raw["codecs"]


def test_variants_that_never_ran_are_reported_once_each_with_their_reason(caplog):
    from types import SimpleNamespace

    units = pd.DataFrame({"codec_spec": ["a", "a", "b", "b"], "status": ["skipped", "skipped", "ok", "error"],
                          "reason": ["no pretrained weights", "no pretrained weights", None, "boom"]})
    with caplog.at_level("WARNING", logger="evalkit.recipes.klt"):
        assert klt.skipped_variants(SimpleNamespace(units=units)) == {"a": "no pretrained weights"}
    assert [r.getMessage() for r in caplog.records] == ["klt recipe: a skipped: no pretrained weights"]
