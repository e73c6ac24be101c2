"""QINCo2 vs plain RVQ on held-out latents at equal bitrate (same M and K): latent MSE and encode/decode time.

The latents are the shipped checkpoint's encoder applied to the demo corpus (not used in training). Ratios are
QINCo2 / RVQ from one run; target: MSE ratio ≤ 0.9 at every M.

    python benchmarks/qinco_bench.py [--checkpoint PATH] [--data data/demo] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from evalkit import audio as audio_lib
from evalkit.codecs import build_codec


def best_time(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="shipped")
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    probe = build_codec(f"qincodec?checkpoint={args.checkpoint}&n_steps=1", "cpu").load()
    encoder = probe.parts[0]
    latents = []
    with torch.no_grad():
        for path in sorted(args.data.glob("*.flac")):
            clip = audio_lib.load(path, channel_policy="mono")
            x = audio_lib.resample(clip.samples, clip.sample_rate, probe.sample_rate)
            x = x[:, : x.shape[1] // probe.hop_length * probe.hop_length]
            latents.append(encoder(torch.from_numpy(x)[None])[0].T)
    x = torch.cat(latents)
    seconds = len(x) / probe.frame_rate
    steps = probe.config.quantizer.steps
    print(f"{len(x)} held-out latent frames ({seconds:.1f} s of audio, D={x.shape[1]}) from {args.data}; "
          f"checkpoint sha256 {probe.sha256[:12]}")
    print(f"{'M':>3} {'kbps':>6} {'MSE qinco2':>11} {'MSE rvq':>9} {'ratio':>6} {'enc s/s q':>10} {'enc s/s r':>10} "
          f"{'enc ratio':>9} {'dec ratio':>9}")
    for m in sorted({max(1, steps // 4), steps // 2, steps}):
        rows = {}
        for family in ("qincodec", "qincodec-rvq"):
            codec = build_codec(f"{family}?checkpoint={args.checkpoint}&n_steps={m}", "cpu").load()
            quantizer = codec.parts[2]
            with torch.no_grad():
                if family == "qincodec":
                    enc_s, codes = best_time(lambda q=quantizer, c=codec, m=m: q.encode(x, c.candidates, c.beam, m),
                                             args.repeats)
                else:
                    enc_s, codes = best_time(lambda q=quantizer, m=m: q.encode(x, m), args.repeats)
                dec_s, rec = best_time(lambda q=quantizer, c=codes: q.decode(c), args.repeats)
            rows[family] = (float((rec - x).pow(2).mean()), enc_s / seconds, dec_s / seconds, codec.bitrate_bps)
        (mq, eq, dq, rate), (mr, er, dr, _) = rows["qincodec"], rows["qincodec-rvq"]
        print(f"{m:>3} {rate / 1000:>6.2f} {mq:>11.5f} {mr:>9.5f} {mq / mr:>6.3f} {eq:>10.4f} {er:>10.4f} "
              f"{eq / er:>9.1f} {dq / dr:>9.1f}")
    print("ratio = QINCo2 / RVQ (target MSE ratio <= 0.9); times are best of "
          f"{args.repeats}, seconds per second of audio")


if __name__ == "__main__":
    main()
