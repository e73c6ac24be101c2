"""QinCodec (Lahrichi, Hadjeres, Richard & Peeters, arXiv:2503.19597), end to end.

:func:`build` runs ``configs/papers/qincodec.yaml`` (the 3.5 kHz anchor, DAC's 8 and 16 kbps models, QinCodec at
8 and 16 kbps, QinCodec with iRVQ codebooks and EnCodec 24 kHz at 12 kbps), then makes:

- Fig. 2: the MUSHRA test folder of DAC and QinCodec at 8 and 16 kbps with the 3.5 kHz anchor (and the hidden
  reference), ready for ``evalkit listen serve``; once it has answers, a rerun draws the means with 95 % CIs
  (:mod:`.qincodec_outputs`);
- Fig. 3: the perplexity of each codebook for EnCodec, DAC, QinCodec and ``qincodec-irvq``;
- the objective table (mel, STFT, SI-SDR, ViSQOL at 8 and 16 kbps, 95 % CIs) and its paired tests;
- Fig. 4: quality against bitrate, one curve per latent dimension (:mod:`.qincodec_latent`).

A variant that cannot run here (no pretrained weights offline, a checkpoint without iRVQ, a Fig. 4 checkpoint not
trained yet) is reported in one line, listed as unavailable, and left out of the figures.

``scale="tiny"``: DAC and EnCodec with random weights (every title says so), :data:`TINY_CLIPS` clips of
:data:`TINY_CLIP_S` s cut from the config's dataset, in-process units; Fig. 4 trains ``tiny`` checkpoints at three
latent dimensions on the config's dataset.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from evalkit.recipes import qincodec_latent, qincodec_outputs, shared
from evalkit.recipes.base import Artifact, PaperClaim, Scale, paper_claims

RECIPE = "qincodec"
CONFIG = Path(__file__).resolve().parents[3] / "configs" / "papers" / "qincodec.yaml"
MUSHRA_FAMILIES = ("dac-44khz", "dac-44khz-16kbps", "qincodec")  # Fig. 2 (with the anchors `listen prepare` adds)
PERPLEXITY_FAMILIES = ("encodec-24khz", "dac-44khz-16kbps", "qincodec", "qincodec-irvq")  # Fig. 3
TABLE_FAMILIES = ("dac-44khz", "dac-44khz-16kbps", "qincodec", "qincodec-irvq")  # the table (and the anchor)
TABLE_METRICS = ("mel_distance", "stft_distance", "si_sdr", "visqol_audio")
LEAD_FAMILIES = ("qincodec", "qincodec-irvq")  # the paper's codec: the first of each paired test
TINY_CLIPS = 3  # three items: the least that gives a 95 % CI of a mean
TINY_CLIP_S = 0.5  # BS.1770 loudness (MUSHRA stimuli are loudness-matched) needs 0.4 s
# ViSQOL needs more than 1 s (45 spectral patches; 0.5 s gives 22): left out at tiny scale
TINY_METRICS = ("mel_distance", "stft_distance", "si_sdr")
RANDOM_WEIGHTS_PARAM = "weights"


def run_config(raw: dict, out: Path, scale: Scale, dataset: Path | None = None) -> dict:
    """The main run config: ``raw`` (the YAML) with its output in ``out/run``; ``tiny``: random weights for
    every family that takes a ``weights`` parameter, in-process units on the CPU, the clips in ``dataset``."""
    cfg = {**raw, "output": str(out / "run")}
    if dataset is not None:
        cfg["dataset"] = {"folder": str(dataset)}
    if scale == "tiny":
        cfg.update(workers=0, device="cpu", metrics=list(TINY_METRICS))
        cfg["codecs"] = [_random_weights(g) for g in raw["codecs"]]
    return cfg


def _random_weights(grid: dict) -> dict:
    from evalkit.codecs import FAMILIES

    family = FAMILIES.get(grid["family"])
    if family is None or RANDOM_WEIGHTS_PARAM not in {p.name for p in family.params}:
        return grid
    return {**grid, "params": {**grid.get("params", {}), RANDOM_WEIGHTS_PARAM: "random"}}


#: artifact key prefix → the paper claim it shares (the MUSHRA test and its figure; every Fig. 4 metric; the
#: objective table and its paired tests)
CLAIM_OF = (("fig2_", "fig2_mushra"), ("fig3_", "fig3_perplexity"), ("fig4_latent", "fig4_latent"),
            ("objective_", "objective_table"))


def _with_claims(artifacts: list[Artifact]) -> list[Artifact]:
    """``artifacts`` with the paper's claim of their key (:data:`CLAIM_OF`)."""
    claims: dict[str, PaperClaim] = paper_claims(RECIPE)
    out = []
    for a in artifacts:
        key = next((claim for prefix, claim in CLAIM_OF if a.key.startswith(prefix)), a.key)
        out.append(Artifact(a.key, a.kind, a.title, a.path, a.note, a.paper or claims.get(key)))
    return out


def build(out: Path, *, scale: Scale = "full", config: Path = CONFIG, dataset: Path | None = None,
          offline: bool | None = None, ratings: Path | None = None) -> list[Artifact]:
    """Run the QinCodec experiments into ``out`` and make their figures, tables and MUSHRA test folder.

    Args:
        out: output folder (``run/``, ``run-latent/``, ``figures/``, ``tables/``, ``listening/`` inside).
        scale: ``full`` (the config as written, pretrained weights, fetched when missing and the network allows)
            or ``tiny`` (see the module docstring).
        config: the recipe's run config.
        dataset: a folder of audio to use instead of the config's dataset.
        offline: never download weights (``None``: ``$EVALKIT_OFFLINE``).
        ratings: MUSHRA answers as a CSV (assessor,item,condition,score) to draw Fig. 2 from, instead of the
            answers stored in the test folder.

    Returns:
        the artifacts, each with the paper's claim for its key (``paper_data/qincodec.json``), and an
        ``unavailable`` artifact per variant that could not run.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = Path(config)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    source = dataset or (config.parent / raw["dataset"]["folder"])
    if scale == "tiny":
        dataset = shared.tiny_clips(Path(source), out / "clips", TINY_CLIPS, TINY_CLIP_S)
    flag = shared.flag(scale)
    cfg = run_config(raw, out, scale, dataset)
    data, unavailable = shared.run(cfg, config.parent, str(config), RECIPE, scale, offline)
    figures, tables = out / "figures", out / "tables"
    ran = len(data.summary["codec_spec"].unique()) if not data.summary.empty else 0
    artifacts = [Artifact("run", "run", f"evalkit run of {config.name}{flag}", data.run_dir,
                          f"{ran} variants scored" + (f"; {len(unavailable)} unavailable (listed below)"
                                                      if unavailable else ""))]
    mushra = [s for s in qincodec_outputs.table_variants(data, MUSHRA_FAMILIES)
              if data.record(s).anchor_cutoff_hz is None]
    missing = [f for f in MUSHRA_FAMILIES if f not in {data.record(s).family for s in mushra}]
    test = qincodec_outputs.mushra_test(data, mushra, out / "listening" / "fig2_mushra", flag, missing=missing)
    if test is not None:
        artifacts.append(test)
        artifacts += qincodec_outputs.mushra_results(test.path, figures, flag, ratings=ratings)
    fig3 = qincodec_outputs.perplexity_artifact(data, PERPLEXITY_FAMILIES, figures, flag)
    artifacts += [fig3] if fig3 is not None else []
    artifacts += qincodec_outputs.objective_tables(data, qincodec_outputs.table_variants(data, TABLE_FAMILIES),
                                                   TABLE_METRICS, tables, flag, LEAD_FAMILIES)
    latent_base = {k: v for k, v in cfg.items() if k != "codecs"}
    artifacts += qincodec_latent.build(latent_base, config.parent, str(config), out, scale, Path(source), offline)
    return _with_claims(artifacts) + shared.unavailable_artifacts(unavailable, data.run_dir)
