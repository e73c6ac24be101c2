"""Writing the packaged checkpoint ``qincodec.pt`` that :mod:`evalkit.codecs.qincodec.checkpoint` reads.

The file holds the configuration, the float16 weights of every part (encoder, decoder, RVQ, QINCo2, iRVQ) and the
provenance of the run: what it was trained on, how, how long, and from which ``--init`` checkpoint (path and
SHA-256).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

import evalkit
from evalkit.codecs.qincodec.checkpoint import FORMAT, OPTIONAL_PARTS, PARTS, read_header
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.recipes import latent_dim_option


def _half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def save_checkpoint(path: Path, config: dict, parts: dict[str, dict], provenance: dict) -> Path:
    """Write the packaged checkpoint (float16 weights) atomically; ``parts`` holds every one of ``PARTS`` and
    may hold ``OPTIONAL_PARTS``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = [k for k in (*PARTS, *OPTIONAL_PARTS) if k in parts]
    schedule.save_atomic({"format": FORMAT, "config": config, **{k: _half(parts[k]) for k in stored},
                          "provenance": provenance}, path)
    return path


def init_identity(checkpoint: Path | None) -> dict | None:
    """``{"path", "sha256"}`` of an ``--init`` checkpoint (``None`` without one)."""
    if checkpoint is None:
        return None
    return {"path": str(checkpoint), "sha256": read_header(str(checkpoint))["sha256"]}


def package(ctx, decoder_state: dict, extra: dict) -> Path:
    """Write ``qincodec.pt``: weights of every part plus what it was trained on, how and how long."""
    ae = schedule.load(ctx.path("ae.pt"))
    quant = schedule.load(ctx.path("quantizer.pt"))
    history = [json.loads(line) for line in (ctx.out / "history.jsonl").read_text().splitlines()]
    encoder = {k.removeprefix("encoder."): v for k, v in ae["model"].items() if k.startswith("encoder.")}
    corpus = ctx.corpus
    provenance = {
        "evalkit": evalkit.__version__, "torch": str(torch.__version__), "machine": platform.machine(),
        "device": str(ctx.device), "config_name": ctx.config.name, "data": str(ctx.data),
        "data_files": len(corpus.files), "train_minutes": round(corpus.train_seconds / 60, 2),
        "val_minutes": round(corpus.val_seconds / 60, 2),
        "command": f"evalkit qincodec train --data {ctx.data} --out {ctx.out} --config {ctx.config.name}"
                   + latent_dim_option(ctx.config)
                   + (f" --init {ctx.init}" if ctx.init else "")
                   + (" --keep-autoencoder" if ctx.keep_autoencoder else ""),
        "init": init_identity(ctx.init), "autoencoder_kept_from": ae.get("kept_from"),
        "ae_steps": ae["steps"], "ae_best_val_mel": ae["best_val_mel"], "ae_wall_s": round(ae["wall_s"], 1),
        "quantizer_val_mse_qinco2": quant["val_mse_qinco2"], "quantizer_val_mse_rvq": quant["val_mse_rvq"],
        "quantizer_val_mse_rvq_beam": quant.get("val_mse_rvq_beam"),
        "quantizer_val_mse_irvq": quant.get("val_mse_irvq"),
        "irvq_train_beam": ctx.config.quantizer.beam if "irvq" in quant else None,
        "quantizer_wall_s": round(quant["wall_s"], 1), **extra,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "history_tail": history[-40:],
    }
    return save_checkpoint(ctx.path("qincodec.pt"), ctx.config.as_dict(),
                           {"encoder": encoder, "decoder": decoder_state, "rvq": quant["rvq"],
                            "qinco2": quant["qinco2"], **({"irvq": quant["irvq"]} if "irvq" in quant else {})},
                           provenance)
