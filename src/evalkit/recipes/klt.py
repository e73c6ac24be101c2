"""The KLT study (Muller, Ragot, Philippe & Scalart: post-training KLT truncation of an RVQ latent), end to end.

:func:`build` runs ``configs/papers/klt.yaml`` (EnCodec 24 kHz at 1.5 to 24 kbps with d̃ = 64 and 72, N_cov = 2,
and the same study on DAC 24 kHz), then writes the eigenvalue spectrum figures, the storage/complexity table,
the rate–quality figures (bases and truncations), and one AB listening test per bitrate × truncation: the
truncated variant against its base codec, 7 listener slots as in the paper.

Each AB test's note gives the power of the 7-listener panel as ``listen plan --design ab`` computes it
(:func:`evalkit.stats.choice_power.choice_power`: the group test ``listen analyze`` applies to AB answers).

``scale="tiny"``: random weights (every title or label says so), the lowest and highest bitrate of each codec
(every truncation), one 0.5 s clip cut from the config's dataset, two fast metrics, in-process units.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from evalkit.recipes import shared
from evalkit.recipes.base import Artifact, PaperClaim, Scale, paper_claims
from evalkit.stats.choice_power import choice_power

log = logging.getLogger(__name__)

RECIPE = "klt"
CONFIG = Path(__file__).resolve().parents[3] / "configs" / "papers" / "klt.yaml"
PAPER_LISTENERS = 7  # listeners in the paper's AB tests
AB_ALPHA = 0.05  # each AB test (one pair) at this level, two-sided
PLANNED_SHARE = 0.75  # planning assumption: 3 of 4 decisive answers prefer the same side
POWER_SIMS = 4000
BITRATE_PARAMS = ("bandwidth", "n_codebooks")  # the grid parameter that sets each codec's bitrate
TINY_CLIPS = 1  # DAC 24 kHz at random weights costs seconds per clip on a CPU
TINY_CLIP_S = 0.5  # BS.1770 loudness (AB stimuli are loudness-matched) needs 0.4 s
TINY_METRICS = ["si_sdr", "mel_distance"]
STORAGE_COLUMNS = {  # accounting field -> table header (every count in floats or multiply-adds per frame)
    "stored_codebooks": "N stored", "used_codebooks": "n in use", "cardinality": "K", "full_dim": "D",
    "dim": "d̃", "code_dim": "c", "codebook_floats_full": "codebook floats, base",
    "codebook_floats": "codebook floats, KLT", "projection_floats_full": "projection floats, base",
    "projection_floats": "projection floats, KLT", "transform_floats": "transform floats (D x D)",
    "mean_floats": "mean floats", "total_floats_full": "total floats, base",
    "total_floats": "total floats, KLT (transform D x D)", "total_floats_stored": "total floats, KLT (U_d stored)",
    "saving_total": "storage saving % (transform D x D)", "saving_total_stored": "storage saving % (U_d stored)",
    "search_macs_full": "search MACs/frame, base", "search_macs": "search MACs/frame, KLT",
    "saving_search": "search saving %",
}


def run_config(raw: dict, out: Path, scale: Scale, dataset: Path | None = None) -> dict:
    """The run config of the recipe: ``raw`` (the YAML) with its output under ``out``; ``tiny``: random
    weights, the first and last bitrate of each grid, :data:`TINY_METRICS`, the clips in ``dataset``."""
    cfg = {**raw, "output": str(out / "run")}
    if dataset is not None:
        cfg["dataset"] = {"folder": str(dataset)}
    if scale == "tiny":
        cfg.update(metrics=list(TINY_METRICS), workers=0, device="cpu")
        cfg["codecs"] = [_tiny_grid(g) for g in raw["codecs"]]
    return cfg


def _tiny_grid(grid: dict) -> dict:
    params = {**grid.get("params", {}), "weights": "random"}
    for name in BITRATE_PARAMS:
        if isinstance(params.get(name), list) and len(params[name]) > 2:
            params[name] = [params[name][0], params[name][-1]]
    return {**grid, "params": params}


def tiny_clips(folder: Path, out: Path, count: int = TINY_CLIPS, seconds: float = TINY_CLIP_S) -> Path:
    """The first ``seconds`` of the first ``count`` audio files of ``folder``, mixed to mono, as WAV files in
    ``out`` (:func:`evalkit.recipes.shared.tiny_clips`)."""
    return shared.tiny_clips(folder, out, count, seconds)


def storage_table(accounting: pd.DataFrame, record: Callable[[str], Any]) -> pd.DataFrame:
    """One row per KLT variant of ``accounting`` (a run's ``klt_accounting.csv``): codec, bitrate (kbps),
    weights and :data:`STORAGE_COLUMNS` (savings in %); ``record``: spec → its variant record."""
    rows = []
    for row in accounting.to_dict("records"):
        record_ = record(row["codec_spec"])
        out: dict[str, Any] = {"codec": record_.base.display_family, "bitrate_kbps": record_.nominal_kbps,
                               "weights": row["weights"]}
        for field, header in STORAGE_COLUMNS.items():
            value = row[field]
            out[header] = round(100 * float(value), 2) if field.startswith("saving") else int(value)
        out["codec_spec"] = row["codec_spec"]
        rows.append(out)
    table = pd.DataFrame(rows)
    return table.sort_values(["codec", "bitrate_kbps", "d̃"]).reset_index(drop=True) if rows else table


write_table = shared.write_table
_save = shared.save
_slug = shared.slug


def skipped_variants(data) -> dict[str, str]:
    """Codec spec → the reason of a variant none of whose units ran (e.g. no pretrained weights), each logged
    as one line."""
    return shared.skipped_variants(data, RECIPE)


def _bases(data) -> dict[str, list[str]]:
    """Base codec spec → its KLT variants' specs (variants with a base and a kept dimension)."""
    specs = list(dict.fromkeys(data.summary["codec_spec"])) if not data.summary.empty else []
    out: dict[str, list[str]] = {}
    for spec in specs:
        record = data.record(spec)
        if record.kept_dim is not None and record.base is not None:
            out.setdefault(record.base.codec_spec, []).append(spec)
    return out


def _by_family(data, bases: dict[str, list[str]]) -> dict[str, list[str]]:
    """Base family display name (``EnCodec 24 kHz``) → every spec of it and of its truncations."""
    out: dict[str, list[str]] = {}
    for base, variants in bases.items():
        out.setdefault(data.record(base).display_family, []).extend([base, *variants])
    return out


def spectrum_figures(data, families: dict[str, list[str]], folder: Path, flag: str) -> list[Artifact]:
    """One eigenvalue spectrum figure per base family (``eigen_spectrum_<family>``)."""
    from evalkit.reports.plots.options import select_variants
    from evalkit.reports.plots.run_figures import klt_spectrum_figure

    out = []
    for family, specs in families.items():
        path = _save(klt_spectrum_figure(select_variants(data, specs)), folder / f"spectrum_{_slug(family)}.png")
        if path:
            out.append(Artifact(f"eigen_spectrum_{_slug(family)}", "figure",
                                f"KLT eigenvalue spectrum, {family} (N_cov = 2){flag}", path))
    return out


def rate_quality_figures(data, families: dict[str, list[str]], folder: Path, flag: str) -> list[Artifact]:
    """Per base family and metric: quality against bitrate, the base and each truncation as a line."""
    from evalkit.reports.plots.options import select_variants
    from evalkit.reports.plots.run_figures import rate_quality_figure

    out = []
    metrics = sorted(data.summary["metric"].unique()) if not data.summary.empty else []
    for family, specs in families.items():
        narrowed = select_variants(data, specs)
        for metric in metrics:
            path = _save(rate_quality_figure(narrowed, metric),
                         folder / f"rate_quality_{_slug(family)}_{metric}.png")
            if path:
                out.append(Artifact(f"rate_quality_{_slug(family)}_{metric}", "figure",
                                    f"{metric} against bitrate, {family}: base and KLT truncations{flag}", path))
    return out


def ab_tests(data, bases: dict[str, list[str]], folder: Path, flag: str, seed: int = 0) -> list[Artifact]:
    """One AB test folder per truncated variant: it against its base, :data:`PAPER_LISTENERS` slots; a variant
    without decoded audio (no weights) is skipped with one line."""
    from evalkit.listening.errors import ListenError
    from evalkit.listening.model import Design
    from evalkit.listening.prepare.design import PrepareOptions

    out = []
    for base, variants in bases.items():
        base_record = data.record(base)
        for spec in variants:
            record = data.record(spec)
            kbps = base_record.nominal_kbps
            key = f"ab_{_slug(base_record.display_family)}_{kbps:g}kbps_d{record.kept_dim}"
            options = PrepareOptions(Design.AB, conditions=(spec, base), listeners=PAPER_LISTENERS, seed=seed)
            try:
                definition = shared.prepare_listening(data.run_dir, folder / key, options)
            except ListenError as exc:
                log.warning("klt recipe: AB test %s skipped: %s", key, exc)
                continue
            answers = len(definition.items) * definition.repeats
            power = choice_power(PAPER_LISTENERS, answers, PLANNED_SHARE, alpha=AB_ALPHA, sims=POWER_SIMS, seed=seed)
            note = (f"design ab, pairs {list(definition.pairs)}; {PAPER_LISTENERS} listener slots (as in the "
                    f"paper), {answers} answer(s) per listener; power {power:.2f} to detect a true preference of "
                    f"{PLANNED_SHARE:.2f} at alpha {AB_ALPHA}, as `evalkit listen plan --design ab --answers "
                    f"{answers} --preference {PLANNED_SHARE:g} --listeners {PAPER_LISTENERS} --sims {POWER_SIMS} "
                    f"--seed {seed}` gives it")
            out.append(Artifact(key, "listening", f"AB test: {record.label} vs {base_record.label}",
                                folder / key, note))
    return out


def _with_claims(artifacts: Iterable[Artifact]) -> list[Artifact]:
    """``artifacts`` with the paper's claim for their key (every AB test shares the ``ab_tests`` claim)."""
    claims: dict[str, PaperClaim] = paper_claims(RECIPE)
    return [Artifact(a.key, a.kind, a.title, a.path, a.note,
                     claims.get(a.key) or (claims.get("ab_tests") if a.kind == "listening" else None))
            for a in artifacts]


def build(out: Path, *, scale: Scale = "full", config: Path = CONFIG, dataset: Path | None = None,
          offline: bool | None = None) -> list[Artifact]:
    """Run the KLT study into ``out`` and make its figures, tables and AB test folders.

    Args:
        out: output folder (``run/``, ``figures/``, ``tables/``, ``listening/`` are written inside).
        scale: ``full`` (the config as written, pretrained weights, fetched when missing and the network
            allows; variants without weights are skipped with one line) or ``tiny`` (see the module docstring).
        config: the recipe's run config.
        dataset: a folder of audio to use instead of the config's dataset.
        offline: never download weights (``None``: ``$EVALKIT_OFFLINE``).

    Returns:
        the artifacts, each with the paper's claim for its key where ``paper_data/klt.json`` has one; an
        ``unavailable`` artifact per variant that could not run.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = Path(config)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    if scale == "tiny":
        source = dataset or (config.parent / raw["dataset"]["folder"])
        dataset = tiny_clips(Path(source), out / "clips")
    flag = shared.flag(scale)
    data, unavailable = shared.run(run_config(raw, out, scale, dataset), config.parent, str(config), RECIPE, scale,
                                   offline)
    bases = _bases(data)
    families = _by_family(data, bases)
    figures, tables = out / "figures", out / "tables"
    figures.mkdir(exist_ok=True)
    tables.mkdir(exist_ok=True)
    ran = len(data.summary["codec_spec"].unique()) if not data.summary.empty else 0
    artifacts = [Artifact("run", "run", f"evalkit run of {config.name}{flag}", data.run_dir,
                          f"{ran} variants scored" + (f"; {len(unavailable)} unavailable (listed below)"
                                                      if unavailable else ""))]
    artifacts += spectrum_figures(data, families, figures, flag)
    table = storage_table(data.klt_accounting, data.record)
    if not table.empty:
        write_table(table, tables / "storage_complexity", f"KLT storage and search cost{flag}")
        artifacts.append(Artifact("storage_table", "table", f"KLT storage and search cost{flag}",
                                  tables / "storage_complexity.html",
                                  "also .csv and .md; transform counted as D x D (the paper) and as stored"))
    artifacts += rate_quality_figures(data, families, figures, flag)
    artifacts += ab_tests(data, bases, out / "listening", flag)
    return _with_claims(artifacts) + shared.unavailable_artifacts(unavailable, data.run_dir)
