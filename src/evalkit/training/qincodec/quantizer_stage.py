"""Stage 3: offline quantizers on the encoder's latents — residual k-means (the RVQ baseline), improved RVQ
(residual k-means trained with beam search, Liu et al. 2015), then QINCo2.

iRVQ is faiss ``ResidualQuantizer`` with ``max_beam_size`` = QINCo2's inference B (``QuantizerConfig.beam``): the
codebook of step m is k-means over the residuals of all B beams kept after step m − 1, and the training vectors
are re-encoded by that beam search before the next step. No joint refinement of the codebooks follows (faiss's
``Train_refine_codebook`` is off), so codebook m depends only on steps 1…m and the first n codebooks are what
training with M = n gives: a prefix is a valid iRVQ at the lower bitrate.

QINCo2 training follows the reference (facebookresearch/Qinco): codebooks start from residual k-means plus
noise; each batch is encoded by the current model without gradients, with the test-time A and B (the training
configuration's ``train_candidates``/``train_beam``), decoded differentiably, and trained on
``Σ_m MSE(x̂_m, x)`` plus the pre-selection codebooks' loss ``Σ_m MSE(G_m[i_m], x − x̂_{m−1})``; AdamW
(lr 8e-4, weight decay 0.1), gradient clipping by value (0.1), linear warm-up then cosine decay to lr × 1e-3,
dead codewords reset to residuals of the batch after each epoch, best-validation weights kept.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from evalkit.codecs.qincodec.qinco2 import Qinco2, ResidualVQ
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.schedule import StageStopped

log = schedule.log


def train_residual_kmeans(x: torch.Tensor, steps: int, size: int, iters: int, seed: int,
                          beam: int = 1) -> ResidualVQ:
    """Residual k-means (faiss ``ResidualQuantizer``) over normalised latents: greedy with ``beam`` = 1 (the RVQ
    baseline), trained with a beam search of ``beam`` paths otherwise (iRVQ)."""
    import faiss

    rvq = ResidualVQ(x.shape[1], steps, size)
    rvq.norm.fit(x)
    xn = rvq.norm(x).numpy().astype(np.float32)
    rq = faiss.ResidualQuantizer(x.shape[1], steps, int(math.log2(size)))
    rq.train_type = faiss.ResidualQuantizer.Train_default
    rq.max_beam_size = beam
    rq.cp.niter = iters
    rq.cp.seed = seed
    rq.train(xn)
    books = faiss.vector_to_array(rq.codebooks).reshape(steps, size, x.shape[1])
    with torch.no_grad():
        rvq.codebooks.copy_(torch.from_numpy(books))
    return rvq


@torch.no_grad()
def prefix_mse(quantizer, x: torch.Tensor, codes: torch.Tensor) -> list[float]:
    """Mean squared error (normalised latent space) of every prefix of ``codes``."""
    xn = quantizer.norm(x)
    if isinstance(quantizer, Qinco2):
        recs = quantizer.decode_normalized(codes)
    else:
        recs = list(torch.cumsum(torch.stack([quantizer.codebooks[m][codes[:, m]]
                                              for m in range(codes.shape[1])]), 0))
    return [float((r - xn).pow(2).mean()) for r in recs]


def qinco_loss(model: Qinco2, xn: torch.Tensor, candidates: int, beam: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training loss on normalised latents and the codes used (``[N, M]``)."""
    codes = model.encode_normalized(xn, candidates, beam)
    recs = model.decode_normalized(codes)
    loss = sum(torch.nn.functional.mse_loss(r, xn) for r in recs)
    for m in range(1, model.steps):
        target = xn - recs[m - 1].detach()
        loss = loss + torch.nn.functional.mse_loss(model.preselect[m][codes[:, m]], target)
    return loss, codes


@torch.no_grad()
def reset_dead_codewords(model: Qinco2, usage: torch.Tensor, xn: torch.Tensor, codes: torch.Tensor,
                         generator: torch.Generator) -> int:
    """Codewords unused for a whole epoch restart at residuals ``x − x̂_{m−1}`` of random batch vectors."""
    recs = model.decode_normalized(codes)
    reset = 0
    for m in range(model.steps):
        dead = (usage[m] == 0).nonzero().flatten()
        if len(dead) == 0:
            continue
        residual = xn if m == 0 else xn - recs[m - 1]
        pick = torch.randint(len(residual), (len(dead),), generator=generator)
        model.codebooks[m, dead] = residual[pick] / (1.0 if m == 0 else model.steps_nets[m - 1].initial_gain)
        model.preselect[m, dead] = residual[pick]
        reset += len(dead)
    return reset


def training_latents(latents: Path, t) -> tuple[torch.Tensor, torch.Tensor]:
    """The training sample (``quantizer_vectors`` latents) and validation sample of a ``latents.npz``, drawn with
    the configuration's seed: every quantizer of a run is trained and scored on the same vectors."""
    data = np.load(latents, allow_pickle=False)
    rng = np.random.default_rng(t.seed)
    train_all = data["train"]
    pick = rng.choice(len(train_all), size=min(t.quantizer_vectors, len(train_all)), replace=False)
    x = torch.from_numpy(train_all[np.sort(pick)])
    val_all = data["val"]
    val = torch.from_numpy(val_all[rng.choice(len(val_all), size=min(len(val_all), t.quantizer_val_vectors),
                                              replace=False)])
    return x, val


def train_irvq(x: torch.Tensor, val: torch.Tensor, q, t) -> tuple[ResidualVQ, list[float], float]:
    """iRVQ with the stage's M, K, k-means iterations and seed, trained with QINCo2's B; its validation MSE per
    prefix (beam-search encoded with that B) and the training wall time in seconds."""
    t0 = time.monotonic()
    irvq = train_residual_kmeans(x, q.steps, q.codebook_size, t.kmeans_iters, t.seed, beam=q.beam)
    wall = time.monotonic() - t0
    log.info("quantizer: iRVQ, residual k-means with beam %d (M=%d, K=%d) on %d latents in %.0f s", q.beam,
             q.steps, q.codebook_size, len(x), wall)
    return irvq, prefix_mse(irvq, val, irvq.encode(val, beam=q.beam)), wall


def add_irvq_to_stage(ctx, final: Path) -> Path:
    """A finished ``quantizer.pt`` written before iRVQ existed gains it; its RVQ and QINCo2 stay as they are."""
    state = schedule.load(final)
    if "irvq" in state:
        return final
    x, val = training_latents(ctx.path("latents.npz"), ctx.config.train)
    irvq, mse, wall = train_irvq(x, val, ctx.config.quantizer, ctx.config.train)
    schedule.save_atomic({**state, "irvq": irvq.state_dict(), "val_mse_irvq": mse, "irvq_wall_s": wall}, final)
    return final


def train_quantizers(ctx) -> Path:
    """Stage 3; returns ``quantizer.pt`` holding the RVQ baseline, iRVQ and the best-validation QINCo2."""
    final = ctx.path("quantizer.pt")
    if final.exists():
        return add_irvq_to_stage(ctx, final)
    t, q = ctx.config.train, ctx.config.quantizer
    x, val = training_latents(ctx.path("latents.npz"), t)
    rvq_path = ctx.path("rvq.pt")
    if rvq_path.exists():
        rvq = ResidualVQ(x.shape[1], q.steps, q.codebook_size)
        rvq.load_state_dict(schedule.load(rvq_path))
    else:
        t0 = time.monotonic()
        rvq = train_residual_kmeans(x, q.steps, q.codebook_size, t.kmeans_iters, t.seed)
        schedule.save_atomic(rvq.state_dict(), rvq_path)
        log.info("quantizer: residual k-means (M=%d, K=%d) on %d latents in %.0f s", q.steps, q.codebook_size,
                 len(x), time.monotonic() - t0)
    rvq_val = prefix_mse(rvq, val, rvq.encode(val))
    rvq_val_beam = prefix_mse(rvq, val, rvq.encode(val, beam=q.beam))
    irvq_path = ctx.path("irvq.pt")
    if irvq_path.exists():
        irvq_saved = schedule.load(irvq_path)
        irvq = ResidualVQ(x.shape[1], q.steps, q.codebook_size)
        irvq.load_state_dict(irvq_saved["irvq"])
        irvq_val, irvq_wall = irvq_saved["val_mse"], irvq_saved["wall_s"]
    else:
        irvq, irvq_val, irvq_wall = train_irvq(x, val, q, t)
        schedule.save_atomic({"irvq": irvq.state_dict(), "val_mse": irvq_val, "wall_s": irvq_wall}, irvq_path)
    model = Qinco2(x.shape[1], q)
    model.init_from_rq(rvq, t.codebook_noise_init, torch.Generator().manual_seed(t.seed))
    model = model.to(ctx.device)
    x, val = x.to(ctx.device), val.to(ctx.device)
    batches = math.ceil(len(x) / t.quantizer_batch)
    total = t.quantizer_epochs * batches
    opt = torch.optim.AdamW(model.parameters(), lr=t.quantizer_lr, weight_decay=t.quantizer_weight_decay)
    warmup = max(1, round(total * t.quantizer_warmup_fraction))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: schedule.warmup_cosine(s, total, warmup, t.quantizer_lr_floor))
    epoch, best, best_state, wall = 0, float("inf"), None, 0.0
    last = ctx.path("quantizer_last.pt")
    if last.exists():
        state = schedule.load(last)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        epoch, best, best_state, wall = state["epoch"], state["best"], state["best_state"], state["wall_s"]
        log.info("quantizer: resuming at epoch %d", epoch)
    timer = schedule.Timer(t.checkpoint_every_s, ctx.budget_s)
    generator = torch.Generator().manual_seed(t.seed)
    from tqdm import tqdm

    while epoch < t.quantizer_epochs:
        order = torch.from_numpy(np.random.default_rng(t.seed + epoch).permutation(len(x))).to(ctx.device)
        usage = torch.zeros(q.steps, q.codebook_size, dtype=torch.long, device=ctx.device)
        bar = tqdm(range(batches), desc=f"qinco2 epoch {epoch + 1}/{t.quantizer_epochs}", leave=False,
                   disable=not ctx.progress, dynamic_ncols=True)
        for i in bar:
            xn = model.norm(x[order[i * t.quantizer_batch: (i + 1) * t.quantizer_batch]])
            loss, codes = qinco_loss(model, xn, q.train_candidates, q.train_beam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), t.quantizer_grad_clip_value)
            opt.step()
            sched.step()
            usage.scatter_add_(1, codes.T, torch.ones_like(codes.T))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        epoch += 1
        reset = reset_dead_codewords(model, usage, xn, codes, generator) if epoch < t.quantizer_epochs else 0
        model.eval()
        mse = prefix_mse(model, val, model.encode(val, q.train_candidates, q.train_beam))
        model.train()
        if mse[-1] < best:
            best = mse[-1]
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        log.info("qinco2 epoch %d: val MSE %.4f at M=%d (RVQ greedy %.4f, beam %d %.4f), %d dead codewords reset",
                 epoch, mse[-1], q.steps, rvq_val[-1], q.beam, rvq_val_beam[-1], reset)
        schedule.append_history(ctx.out, {"stage": "quantizer", "epoch": epoch, "val_mse": mse, "rvq_val_mse": rvq_val,
                                          "rvq_beam_val_mse": rvq_val_beam, "reset": reset,
                                          "wall_s": round(wall + timer.elapsed, 1)})
        schedule.save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                              "epoch": epoch, "best": best, "best_state": best_state,
                              "wall_s": wall + timer.elapsed}, last)
        if timer.out_of_time() and epoch < t.quantizer_epochs:
            raise StageStopped(f"quantizer: stopped after epoch {epoch}/{t.quantizer_epochs}")
    model.load_state_dict(best_state)
    model.eval()
    inference = prefix_mse(model, val, model.encode(val, q.candidates, q.beam))
    log.info("quantizer: done; val MSE at M=%d: QINCo2 %.4f (A=%d, B=%d), RVQ beam %d %.4f (ratio %.3f), "
             "greedy %.4f", q.steps, inference[-1], q.candidates, q.beam, q.beam, rvq_val_beam[-1],
             inference[-1] / rvq_val_beam[-1], rvq_val[-1])
    log.info("quantizer: iRVQ (trained and searched with beam %d) val MSE at M=%d %.4f", q.beam, q.steps,
             irvq_val[-1])
    schedule.save_atomic({"rvq": rvq.state_dict(), "qinco2": best_state, "irvq": irvq.state_dict(),
                          "val_mse_qinco2": inference, "val_mse_rvq": rvq_val, "val_mse_rvq_beam": rvq_val_beam,
                          "val_mse_irvq": irvq_val, "irvq_wall_s": irvq_wall, "wall_s": wall + timer.elapsed},
                         final)
    last.unlink(missing_ok=True)
    return final
