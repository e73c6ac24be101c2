"""``evalkit qincodec train``: the three QinCodec stages, each resumable from its last checkpoint.

1. ``ae`` — continuous autoencoder, multi-scale mel + waveform L1 loss (plus, where the configuration asks for
   it, multi-period and multi-resolution discriminators with feature matching), AdamW, warm-up + cosine; the
   weights with the best validation mel distance are kept. ``keep_autoencoder`` takes a packaged checkpoint's
   encoder and decoder instead (no training).
2. ``latents`` — the training and validation audio encoded into latents with that encoder.
3. ``quantizer`` — offline: residual k-means (faiss), which is the plain-RVQ baseline, then QINCo2 initialised
   from it and trained on the same latents with the same M and K.
4. ``finetune`` — the decoder trained on quantized latents (QINCo2 and RVQ, random prefixes of M steps), encoder
   and quantizers frozen; then the packaged checkpoint ``qincodec.pt`` is written.

Stages 1 and 2 are in :mod:`.autoencoder_stage`, 3 in :mod:`.quantizer_stage`, 4 in :mod:`.finetune` (the
checkpoint it writes in :mod:`.packaging`); this module runs them in order. Every stage writes its result file
only when finished and keeps a ``*_last.pt`` while running, so an interrupted run (Ctrl-C, kill, time budget)
continues where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from evalkit.codecs.qincodec.config import QinConfig
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.autoencoder_stage import extract_latents, train_autoencoder
from evalkit.training.qincodec.data import Corpus, load_corpus
from evalkit.training.qincodec.packaging import init_identity

STAGES = ("ae", "latents", "quantizer", "finetune")
log = schedule.log


@dataclass
class Context:
    config: QinConfig
    data: Path
    out: Path
    device: torch.device
    budget_s: float | None = None
    progress: bool = True
    init: Path | None = None  # packaged checkpoint whose encoder and decoder start the autoencoder stage
    keep_autoencoder: bool = False  # take init's encoder and decoder as the finished autoencoder stage
    _corpus: Corpus | None = None

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            t = self.config.train
            self._corpus = load_corpus(self.data, self.config.model.sample_rate, t.val_fraction, t.segment_s)
            log.info("corpus: %d files (%d skipped), %.1f min training, %.1f min validation",
                     len(self._corpus.files), len(self._corpus.skipped), self._corpus.train_seconds / 60,
                     self._corpus.val_seconds / 60)
            for reason in self._corpus.skipped:
                log.warning("skipped %s", reason)
        return self._corpus

    def path(self, name: str) -> Path:
        return self.out / name


def check_run_folder(ctx: Context) -> None:
    """A run folder belongs to one configuration: resuming with another one is refused."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    meta = ctx.path("run.json")
    mine = json.loads(json.dumps({"config": ctx.config.as_dict(), "data": str(ctx.data.resolve()),
                                  "init": init_identity(ctx.init), "keep_autoencoder": ctx.keep_autoencoder}))
    if meta.exists():
        theirs = json.loads(meta.read_text())
        if theirs["config"] != mine["config"]:
            raise ValueError(f"{ctx.out} holds a run of config {theirs['config']['name']!r} with other settings; "
                             f"use another --out or delete it")
        if (theirs.get("init") or {}).get("sha256") != (mine["init"] or {}).get("sha256"):  # same bytes, any path
            raise ValueError(f"{ctx.out} holds a run started from another --init checkpoint; "
                             f"use another --out or delete it")
        if bool(theirs.get("keep_autoencoder")) != ctx.keep_autoencoder:
            raise ValueError(f"{ctx.out} holds a run {'without' if ctx.keep_autoencoder else 'with'} "
                             f"--keep-autoencoder; use another --out or delete it")
    else:
        meta.write_text(json.dumps(mine, indent=1))


def _stage(name: str):
    if name == "quantizer":
        from evalkit.training.qincodec.quantizer_stage import train_quantizers

        return train_quantizers
    if name == "finetune":
        from evalkit.training.qincodec.finetune import finetune_decoder

        return finetune_decoder
    return {"ae": train_autoencoder, "latents": extract_latents}[name]


def run_training(ctx: Context, stages: tuple[str, ...] = STAGES) -> Path | None:
    """Run ``stages`` in order (finished ones are skipped); returns the packaged checkpoint when written."""
    check_run_folder(ctx)
    if ctx.device.type == "cpu":
        torch.set_flush_denormal(True)  # zero-initialised layers produce denormals: 4-50x slower without this
    packaged = None
    for name in STAGES:
        if name in stages:
            t0 = time.monotonic()
            result = _stage(name)(ctx)
            schedule.append_history(ctx.out, {"stage": name, "done": True, "session_s": time.monotonic() - t0})
            if name == "finetune":
                packaged = result
    return packaged
