"""Stage 4: finetune the decoder on quantized latents (encoder and quantizers frozen), then package.

Each batch is quantized by QINCo2 or the RVQ baseline (alternately) with a random prefix of M' ∈ [min, M]
steps, so one decoder serves every bitrate of both quantizers. The decoder with the best validation mel
distance (mean over both quantizers at M/2 steps) is kept.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from evalkit.codecs.qincodec.qinco2 import Qinco2, ResidualVQ
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.autoencoder_stage import load_autoencoder
from evalkit.training.qincodec.data import SegmentSampler, fixed_segments
from evalkit.training.qincodec.losses import ReconstructionLoss
from evalkit.training.qincodec.packaging import package
from evalkit.training.qincodec.schedule import StageStopped

log = schedule.log


def load_quantizers(ctx) -> tuple[Qinco2, ResidualVQ]:
    q = ctx.config.quantizer
    dim = ctx.config.model.latent_dim
    state = schedule.load(ctx.path("quantizer.pt"))
    rvq = ResidualVQ(dim, q.steps, q.codebook_size)
    rvq.load_state_dict(state["rvq"])
    qinco = Qinco2(dim, q)
    qinco.load_state_dict(state["qinco2"])
    return qinco.to(ctx.device).eval(), rvq.to(ctx.device).eval()


@torch.no_grad()
def quantize_latents(latent: torch.Tensor, quantizer, steps: int, candidates: int, beam: int) -> torch.Tensor:
    """``[B, D, T]`` → the same latents after quantization with the first ``steps`` steps."""
    b, d, t = latent.shape
    flat = latent.transpose(1, 2).reshape(-1, d)
    if isinstance(quantizer, Qinco2):
        codes = quantizer.encode(flat, candidates, beam, steps)
    else:
        codes = quantizer.encode(flat, steps)
    return quantizer.decode(codes).reshape(b, t, d).transpose(1, 2)


@torch.no_grad()
def validation_mel(decoder, criterion, latents: list[torch.Tensor], targets: torch.Tensor) -> float:
    decoder.eval()
    total = 0.0
    for z, x in zip(latents, targets.split(len(latents[0])), strict=True):
        total += criterion(decoder(z)[..., : x.shape[-1]], x)[1]["mel"] * len(x)
    decoder.train()
    return total / len(targets)


def finetune_decoder(ctx) -> Path:
    """Stage 4; returns the packaged checkpoint ``qincodec.pt``."""
    packaged = ctx.path("qincodec.pt")
    if packaged.exists():
        return packaged
    cfg, t, q = ctx.config, ctx.config.train, ctx.config.quantizer
    torch.manual_seed(t.seed + 3)
    ae = load_autoencoder(ctx)
    qinco, rvq = load_quantizers(ctx)
    seg = int(t.segment_s * cfg.model.sample_rate)
    sampler = SegmentSampler(ctx.corpus.train, seg, t.seed + 2)
    val = fixed_segments(ctx.corpus.val, seg, t.val_segments, t.seed + 1).to(ctx.device)
    val_steps = max(1, q.steps // 2)
    with torch.no_grad():
        val_latent = [ae.encode(c) for c in val.split(8)]
        val_q = [quantize_latents(z, qz, val_steps, q.candidates, q.beam) for qz in (qinco, rvq) for z in val_latent]
    criterion = ReconstructionLoss(cfg.model.sample_rate, t.l1_weight).to(ctx.device)
    decoder = ae.decoder.train()
    ae.encoder.requires_grad_(False)
    opt = torch.optim.AdamW(decoder.parameters(), lr=t.finetune_lr, betas=(0.8, 0.99), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: schedule.warmup_cosine(s, t.finetune_steps, min(t.warmup_steps, t.finetune_steps // 10 + 1)))
    before = validation_mel(decoder, criterion, val_q, torch.cat([val, val]))
    step, best, best_state, wall = 0, before, {k: v.cpu().clone() for k, v in decoder.state_dict().items()}, 0.0
    last = ctx.path("finetune_last.pt")
    if last.exists():
        state = schedule.load(last)
        decoder.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        sampler.set_state(state["sampler"])
        step, best, best_state, wall, before = (state["step"], state["best"], state["best_state"], state["wall_s"],
                                                state["before"])
    log.info("finetune: validation mel on quantized latents (M=%d) before: %.4f", val_steps, before)
    pick = random.Random(t.seed + step)
    timer = schedule.Timer(t.checkpoint_every_s, ctx.budget_s)

    def save() -> None:
        schedule.save_atomic({"model": decoder.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                              "sampler": sampler.state(), "step": step, "best": best, "best_state": best_state,
                              "wall_s": wall + timer.elapsed, "before": before}, last)

    val_every = max(1, min(100, t.finetune_steps // 5))
    from tqdm import tqdm

    bar = tqdm(total=t.finetune_steps, initial=step, desc="finetune", leave=False, disable=not ctx.progress)
    while step < t.finetune_steps:
        batch = sampler.batch(t.batch_size).to(ctx.device)
        quantizer = qinco if step % 2 == 0 else rvq
        steps = pick.randint(min(t.finetune_min_steps, q.steps), q.steps)
        with torch.no_grad():
            zq = quantize_latents(ae.encode(batch), quantizer, steps, q.train_candidates, q.train_beam)
        loss, parts = criterion(decoder(zq)[..., : batch.shape[-1]], batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), t.grad_clip * 100)
        opt.step()
        sched.step()
        step += 1
        bar.update(1)
        if step % val_every == 0 or step == t.finetune_steps:
            score = validation_mel(decoder, criterion, val_q, torch.cat([val, val]))
            if score < best:
                best, best_state = score, {k: v.cpu().clone() for k, v in decoder.state_dict().items()}
            log.info("finetune step %d: train mel %.4f | val mel (quantized, M=%d) %.4f (before %.4f)", step,
                     parts["mel"], val_steps, score, before)
            schedule.append_history(ctx.out, {"stage": "finetune", "step": step, **parts, "val_mel_quantized": score,
                                              "before": before, "wall_s": round(wall + timer.elapsed, 1)})
        if timer.checkpoint_due():
            save()
        if timer.out_of_time() and step < t.finetune_steps:
            save()
            bar.close()
            raise StageStopped(f"finetune: stopped at step {step}/{t.finetune_steps}")
    bar.close()
    log.info("finetune: done; validation mel on quantized latents %.4f -> %.4f", before, best)
    packaged = package(ctx, best_state, {"finetune_val_mel_before": before, "finetune_val_mel_after": best,
                                         "finetune_wall_s": wall + timer.elapsed})
    last.unlink(missing_ok=True)
    return packaged
