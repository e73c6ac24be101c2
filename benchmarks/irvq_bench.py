"""iRVQ vs plain RVQ training on real latents: the shipped encoder's demo-corpus latents, two folds split by item.

The demo items alternate between two halves; each fold trains greedy residual k-means (the RVQ baseline) and iRVQ
(the same, trained with a beam of B paths) on one half with the quantizer stage's function and settings (12 k-means
iterations, seed 0), then scores both halves: in-sample and held-out latent MSE (latent units², mean over frames
and dimensions) for RVQ greedy, RVQ searched with B, iRVQ greedy and iRVQ searched with B. K is small (default 64)
because 90 s of demo audio gives only 4,500 training frames per fold. Independent of whether a checkpoint stores
iRVQ codebooks (``qinco_bench.py`` scores the stored ones).

    python benchmarks/irvq_bench.py [--checkpoint shipped] [--data data/demo] [--steps 8] [--size 64] [--beam 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evalkit import audio as audio_lib
from evalkit.codecs import build_codec
from evalkit.training.qincodec.quantizer_stage import train_residual_kmeans


def item_latents(checkpoint: str, data: Path) -> list[torch.Tensor]:
    """``[frames, D]`` latents of every FLAC in ``data`` (mono mix), by the checkpoint's encoder."""
    probe = build_codec(f"qincodec?checkpoint={checkpoint}&n_steps=1", "cpu").load()
    encoder, out = probe.parts[0], []
    with torch.no_grad():
        for path in sorted(data.glob("*.flac")):
            clip = audio_lib.load(path, channel_policy="mono")
            x = audio_lib.resample(clip.samples, clip.sample_rate, probe.sample_rate)
            x = x[:, : x.shape[1] // probe.hop_length * probe.hop_length]
            out.append(encoder(torch.from_numpy(x)[None])[0].T)
    return out


@torch.no_grad()
def mse(quantizer, x: torch.Tensor, beam: int) -> float:
    return float((quantizer.decode(quantizer.encode(x, beam=beam)) - x).pow(2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="shipped")
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--beam", type=int, default=4)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    items = item_latents(args.checkpoint, args.data)
    halves = (torch.cat(items[0::2]), torch.cat(items[1::2]))
    print(f"M={args.steps}, K={args.size}, B={args.beam}; folds of {len(halves[0])} / {len(halves[1])} frames; "
          f"MSE in latent units²")
    print(f"{'fold':>4} {'scored on':>9} {'rvq greedy':>10} {'rvq beam':>9} {'irvq greedy':>11} {'irvq beam':>9} "
          f"{'irvq/rvq beam':>13}")
    for fold, (train, test) in enumerate((halves, halves[::-1]), start=1):
        rvq = train_residual_kmeans(train, args.steps, args.size, 12, 0)
        irvq = train_residual_kmeans(train, args.steps, args.size, 12, 0, beam=args.beam)
        for name, x in (("train", train), ("held out", test)):
            r = [mse(rvq, x, 1), mse(rvq, x, args.beam), mse(irvq, x, 1), mse(irvq, x, args.beam)]
            print(f"{fold:>4} {name:>9} {r[0]:>10.5f} {r[1]:>9.5f} {r[2]:>11.5f} {r[3]:>9.5f} {r[3] / r[1]:>13.3f}")


if __name__ == "__main__":
    main()
