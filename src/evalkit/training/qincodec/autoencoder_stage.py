"""Stages 1 and 2: the continuous autoencoder (trained, or kept from ``--init``), then its latents.

1. ``ae`` — multi-scale mel + waveform L1 loss (plus, where the configuration asks for it, multi-period and
   multi-resolution discriminators with feature matching), AdamW, warm-up + cosine; the weights with the best
   validation mel distance are kept in ``ae.pt``. ``keep_autoencoder`` takes a packaged checkpoint's encoder
   and decoder instead (no training).
2. ``latents`` — the training and validation audio encoded into latents with that encoder (``latents.npz``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from evalkit.codecs.qincodec.checkpoint import load_checkpoint
from evalkit.codecs.qincodec.model import Autoencoder
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.data import SegmentSampler, fixed_segments
from evalkit.training.qincodec.losses import ReconstructionLoss
from evalkit.training.qincodec.packaging import init_identity
from evalkit.training.qincodec.schedule import StageStopped

log = schedule.log


def _bar(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True, leave=False)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


@torch.no_grad()
def validate(model: Autoencoder, criterion: ReconstructionLoss, batch: torch.Tensor, chunk: int = 8) -> dict:
    model.eval()
    mel = l1 = 0.0
    for i in range(0, len(batch), chunk):
        x = batch[i: i + chunk]
        recon, _ = model(x)
        _, parts = criterion(recon, x)
        mel += parts["mel"] * len(x)
        l1 += parts["l1"] * len(x)
    model.train()
    return {"val_mel": mel / len(batch), "val_l1": l1 / len(batch)}


def train_autoencoder(ctx) -> Path:
    """Stage 1; returns ``ae.pt`` (the best-validation weights)."""
    final = ctx.path("ae.pt")
    if final.exists():
        return final
    if ctx.keep_autoencoder:
        return keep_autoencoder(ctx)
    cfg, t = ctx.config, ctx.config.train
    _seed(t.seed)
    seg = int(t.segment_s * cfg.model.sample_rate)
    sampler = SegmentSampler(ctx.corpus.train, seg, t.seed)
    val_batch = fixed_segments(ctx.corpus.val, seg, t.val_segments, t.seed + 1).to(ctx.device)
    model = Autoencoder(cfg.model).to(ctx.device)
    criterion = ReconstructionLoss(cfg.model.sample_rate, t.l1_weight).to(ctx.device)
    opt = torch.optim.AdamW(model.parameters(), lr=t.ae_lr, betas=(0.8, 0.99), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule.warmup_cosine(s, t.ae_steps, t.warmup_steps))
    gan = None
    if t.adversarial:
        from evalkit.training.qincodec.adversarial import Adversary

        gan = Adversary(t, ctx.device)
    step, best, best_state, wall = 0, float("inf"), None, 0.0
    last = ctx.path("ae_last.pt")
    if last.exists():
        state = schedule.load(last)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        if gan is not None:
            gan.load_state_dict(state["gan"])
        sampler.set_state(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        step, best, best_state, wall = state["step"], state["best"], state["best_state"], state["wall_s"]
        log.info("ae: resuming at step %d (best val mel %.4f)", step, best)
    elif ctx.init is not None:
        start = init_state(ctx.init)
        model.load_state_dict(start)
        log.info("ae: starting from the autoencoder of %s", ctx.init)

    def save() -> None:
        schedule.save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                              "sampler": sampler.state(), "torch_rng": torch.get_rng_state(), "step": step,
                              "best": best, "best_state": best_state, "wall_s": wall + timer.elapsed,
                              **({"gan": gan.state_dict()} if gan is not None else {})}, last)

    val_every = max(1, min(250, t.ae_steps // 8))
    timer = schedule.Timer(t.checkpoint_every_s, ctx.budget_s)
    bar = _bar(t.ae_steps, step, "ae", ctx.progress)
    model.train()
    while step < t.ae_steps:
        batch = sampler.batch(t.batch_size).to(ctx.device)
        recon, _ = model(batch)
        loss, parts = criterion(recon, batch)
        if gan is not None and step >= t.gan_start_step:
            loss, parts = gan.step(recon, batch, loss, parts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip * 100)
        opt.step()
        sched.step()
        step += 1
        bar.update(1)
        bar.set_postfix(mel=f"{parts['mel']:.3f}", l1=f"{parts['l1']:.4f}")
        if step % val_every == 0 or step == t.ae_steps:
            scores = validate(model, criterion, val_batch)
            if scores["val_mel"] < best:
                best = scores["val_mel"]
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            record = {"stage": "ae", "step": step, **parts, **scores, "wall_s": round(wall + timer.elapsed, 1)}
            schedule.append_history(ctx.out, record)
            log.info("ae step %d: train mel %.4f l1 %.5f | val mel %.4f (best %.4f)", step, parts["mel"],
                     parts["l1"], scores["val_mel"], best)
        if timer.checkpoint_due():
            save()
        if timer.out_of_time() and step < t.ae_steps:
            save()
            bar.close()
            raise StageStopped(f"ae: stopped at step {step}/{t.ae_steps}")
    bar.close()
    schedule.save_atomic({"model": best_state, "config": cfg.as_dict(), "steps": step, "best_val_mel": best,
                          "wall_s": wall + timer.elapsed}, final)
    last.unlink(missing_ok=True)
    log.info("ae: done, best validation mel distance %.4f", best)
    return final


def keep_autoencoder(ctx) -> Path:
    """Stage 1 without training: ``ae.pt`` holds ``--init``'s encoder and decoder and its autoencoder provenance."""
    if ctx.init is None:
        raise ValueError("--keep-autoencoder needs --init CHECKPOINT (the autoencoder to keep)")
    prov = load_checkpoint(str(ctx.init))["provenance"]
    state = {"model": init_state(ctx.init), "config": ctx.config.as_dict(), "steps": prov.get("ae_steps"),
             "best_val_mel": prov.get("ae_best_val_mel"), "wall_s": prov.get("ae_wall_s") or 0.0,
             "kept_from": init_identity(ctx.init)}
    final = ctx.path("ae.pt")
    schedule.save_atomic(state, final)
    log.info("ae: kept the autoencoder of %s (%s steps, trained there)", ctx.init, prov.get("ae_steps"))
    return final


def init_state(checkpoint: Path) -> dict:
    """The autoencoder state dict (``encoder.*``, ``decoder.*``) of a packaged checkpoint, for ``--init``."""
    bundle = load_checkpoint(str(checkpoint))
    return {**{f"encoder.{k}": v for k, v in bundle["encoder"].items()},
            **{f"decoder.{k}": v for k, v in bundle["decoder"].items()}}


def finished_autoencoder(ctx) -> Path:
    """``ae.pt`` of a finished stage 1. With ``keep_autoencoder`` it is written from ``--init`` when missing (stage 1
    trains nothing then, so a later stage need not name it); otherwise a missing one is refused (ValueError)."""
    final = ctx.path("ae.pt")
    if final.exists():
        return final
    if ctx.keep_autoencoder:
        return keep_autoencoder(ctx)
    raise ValueError(f"{ctx.out}: the autoencoder stage is not done; run it first (--stage ae)")


def load_autoencoder(ctx) -> Autoencoder:
    model = Autoencoder(ctx.config.model)
    model.load_state_dict(schedule.load(finished_autoencoder(ctx))["model"])
    return model.to(ctx.device).eval()


@torch.no_grad()
def encode_signals(model: Autoencoder, signals: list[np.ndarray], device: torch.device,
                   chunk_s: float = 20.0) -> np.ndarray:
    """Latent frames ``[frames, D]`` of every signal (encoded in chunks of whole frames)."""
    hop = model.cfg.hop_length
    chunk = max(hop, int(chunk_s * model.cfg.sample_rate) // hop * hop)
    out = []
    for s in signals:
        for i in range(0, len(s) - hop + 1, chunk):
            piece = torch.from_numpy(s[i: i + chunk]).view(1, 1, -1).to(device)
            n = piece.shape[-1] // hop * hop
            out.append(model.encode(piece[..., :n])[0].T.cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def extract_latents(ctx) -> Path:
    """Stage 2; returns ``latents.npz`` with ``train`` and ``val`` latent frames ``[N, D]``."""
    final = ctx.path("latents.npz")
    if final.exists():
        return final
    model = load_autoencoder(ctx)
    t0 = time.monotonic()
    train = encode_signals(model, ctx.corpus.train, ctx.device)
    val = encode_signals(model, ctx.corpus.val, ctx.device)
    tmp = ctx.path("latents.tmp.npz")
    np.savez(tmp, train=train, val=val)
    tmp.replace(final)
    log.info("latents: %d training and %d validation frames (D=%d) in %.0f s", len(train), len(val),
             train.shape[1], time.monotonic() - t0)
    return final
