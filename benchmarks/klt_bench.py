"""Encoder-side nearest-neighbour search: original vs KLT-truncated quantizer, same latent frames, one run.

EnCodec 24 kHz shape: 32 codebooks x 1024, latent D = 128, truncated to d = 72 (arithmetic bound 128/72 =
1.78x; the truncated path also pays the D x d projection). Timed:
  * EnCodec's own ResidualVectorQuantizer.encode (official architecture, random weights, 24 kbps);
  * the same greedy search in evalkit at D = 128 (evalkit.codecs.klt.RvqSearch on the original codebooks);
  * the KLT-truncated quantizer at d = 72 (projection z~ = U_d^T (z - mu), then greedy search in 72-d).
Target: truncated >= 1.5x faster than the original.

DAC 44 kHz shape: 9 stages, each a 1024 -> 8 in-projection, cosine search over 1024 x 8, 8 -> 1024 out-projection;
truncated to d = 72 with n_cov = 9 (= the rank). Timed on the same latent frames: DAC's own quantizer
(``model.quantizer``, 9 stages) vs the KLT-truncated one. No speed target: the multiply-add bound is
221,184 / 157,824 = 1.40x (see ``evalkit klt analyze``), since DAC's codebooks are already 8-d.

Usage: .venv/bin/python benchmarks/klt_bench.py [--seconds 60] [--repeats 9]
"""

from __future__ import annotations

import argparse
import time

import torch

from evalkit.codecs import build_codec
from evalkit.codecs.klt import RvqSearch


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio seconds of latent frames (75 Hz)")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    base = build_codec("encodec-24khz?bandwidth=24&weights=random", device="cpu").load()
    klt = build_codec("klt?base=encodec-24khz&bandwidth=24&weights=random&dim=72&n_cov=2", device="cpu").load()
    frames = int(args.seconds * 75)
    books = base.codebooks()
    # latent frames distributed like the codebook sums, so the search does real work
    gen = torch.Generator().manual_seed(0)
    latent = sum(books[k][torch.randint(0, 1024, (frames,), generator=gen)] for k in range(8)).T[None].contiguous()
    latent = latent + 0.1 * torch.randn(latent.shape, generator=gen)
    quantizer = base.model.quantizer
    full_search = RvqSearch(books)

    with torch.inference_mode():
        t_lib = best_of(lambda: quantizer.encode(latent, 75, 24.0), args.repeats)
        t_full = best_of(lambda: full_search(latent), args.repeats)
        t_klt = best_of(lambda: klt.quantizer.quantize(latent), args.repeats)
        same = torch.equal(quantizer.encode(latent, 75, 24.0).transpose(0, 1), full_search(latent)[0])
    print(f"torch threads {torch.get_num_threads()}; {frames} frames (= {args.seconds:g} s at 75 Hz), "
          f"32 x 1024 codebooks; best of {args.repeats}")
    print(f"EnCodec ResidualVectorQuantizer.encode, D=128 : {t_lib * 1000:8.1f} ms")
    print(f"evalkit greedy RVQ, D=128 (same codes: {same}) : {t_full * 1000:8.1f} ms")
    print(f"KLT-truncated, projection + d=72            : {t_klt * 1000:8.1f} ms")
    print(f"speed-up vs EnCodec's quantizer: {t_lib / t_klt:.2f}x; vs the same search at D=128: "
          f"{t_full / t_klt:.2f}x (target >= 1.5x; arithmetic bound 1.78x)")
    dac_bench(args.seconds, args.repeats)


def dac_bench(seconds: float, repeats: int) -> None:
    """DAC's own 9-stage quantizer vs the KLT-truncated one at d = 72 on the same latent frames."""
    base = build_codec("dac-44khz?n_codebooks=9&weights=random", device="cpu").load()
    klt = build_codec("klt?base=dac-44khz&n_codebooks=9&weights=random&dim=72&n_cov=9", device="cpu").load()
    frames = int(seconds * base.frame_rate)
    books = base.latent_codebooks()  # [9, 1024, 1024]
    gen = torch.Generator().manual_seed(0)
    latent = sum(books[k][torch.randint(0, 1024, (frames,), generator=gen)] for k in range(9)).T[None].contiguous()
    latent = latent + 0.01 * latent.std() * torch.randn(latent.shape, generator=gen)
    with torch.inference_mode():
        t_dac = best_of(lambda: base.quantize(latent), repeats)
        t_klt = best_of(lambda: klt.quantizer.quantize(latent), repeats)
        agree = (base.quantize(latent) == klt.quantizer.quantize(latent)).float().mean().item()
    acc = klt.accounting()
    print(f"DAC 44 kHz, {frames} frames, 9 x (1024 -> 8, 1024 x 8, 8 -> 1024); best of {repeats}")
    print(f"DAC quantizer, D=1024                       : {t_dac * 1000:8.1f} ms")
    print(f"KLT-truncated, projection + d=72            : {t_klt * 1000:8.1f} ms (same codes: {100 * agree:.1f} %)")
    print(f"speed-up vs DAC's quantizer: {t_dac / t_klt:.2f}x (multiply-add bound "
          f"{acc.search_macs_full / acc.search_macs:.2f}x; storage saving {100 * acc.saving_total_stored:.1f} % "
          f"as stored, {100 * acc.saving_total:.1f} % with the transform counted as D x D)")


if __name__ == "__main__":
    main()
