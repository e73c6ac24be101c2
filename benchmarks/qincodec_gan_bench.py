"""Cost of one adversarial vs one plain stage-1 training step of a QinCodec configuration on this machine.

Plain: encoder + decoder forward, mel + L1 loss, backward, AdamW step. Adversarial: the same plus one
discriminator update (real and detached decoded audio) and the generator's adversarial and feature-matching terms
(``evalkit.training.qincodec.adversarial``). Steps alternate plain/adversarial so that load from other processes
affects both alike; the figure is the ratio of medians from one run.

    python benchmarks/qincodec_gan_bench.py [--config small] [--steps 3] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from evalkit.codecs.qincodec.model import Autoencoder
from evalkit.training.qincodec.adversarial import Adversary
from evalkit.training.qincodec.losses import ReconstructionLoss
from evalkit.training.qincodec.recipes import get_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each kind (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    config = get_config(args.config, adversarial=True)
    t, device = config.train, torch.device("cpu")
    torch.manual_seed(0)
    model = Autoencoder(config.model)
    criterion = ReconstructionLoss(config.model.sample_rate, t.l1_weight)
    opt = torch.optim.AdamW(model.parameters(), lr=t.ae_lr, betas=(0.8, 0.99))
    gan = Adversary(t, device)
    batch = 0.1 * torch.randn(t.batch_size, 1, int(t.segment_s * config.model.sample_rate))

    def step(adversarial: bool) -> float:
        t0 = time.perf_counter()
        recon, _ = model(batch)
        loss, parts = criterion(recon, batch)
        if adversarial:
            loss, parts = gan.step(recon, batch, loss, parts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    step(False), step(True)  # warm-up
    plain, adversarial = [], []
    for _ in range(args.steps):
        plain.append(step(False))
        adversarial.append(step(True))
    result = {"config": args.config, "threads": args.threads, "batch": t.batch_size, "segment_s": t.segment_s,
              "plain_step_s": statistics.median(plain), "adversarial_step_s": statistics.median(adversarial),
              "discriminator_parameters": sum(p.numel() for p in gan.disc.parameters()),
              "autoencoder_parameters": sum(p.numel() for p in model.parameters())}
    result["ratio"] = result["adversarial_step_s"] / result["plain_step_s"]
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{args.config}: batch {t.batch_size} x {t.segment_s} s, {args.threads} thread(s): plain step "
              f"{result['plain_step_s']:.2f} s, adversarial step {result['adversarial_step_s']:.2f} s "
              f"(ratio {result['ratio']:.2f}; median of {args.steps}); discriminators "
              f"{result['discriminator_parameters']:,} parameters, autoencoder {result['autoencoder_parameters']:,}")


if __name__ == "__main__":
    main()
