"""QINCo2 vs plain RVQ and iRVQ on held-out latents at equal bitrate (same M and K), with the search separated out.

Per M (a prefix of the checkpoint's steps), five latent MSEs (mean over frames and dimensions, in the encoder's
latent units²):

* ``rvq_greedy_mse`` — RVQ, greedy search (``qincodec-rvq``);
* ``rvq_beam_mse`` — RVQ, beam search with QINCo2's B (``qincodec-rvq?beam=B``): the search-matched baseline;
* ``qinco2_b1_mse`` — QINCo2 with its A and B = 1 (``qincodec?beam=1``): the network without the beam;
* ``qinco2_mse`` — QINCo2 with its A and B (``qincodec``);
* ``irvq_mse`` — iRVQ, codebooks trained with beam search, searched with QINCo2's B (``qincodec-irvq``); NaN when
  the checkpoint has no iRVQ codebooks (the reason is printed).

``qinco2_mse / rvq_beam_mse`` is what the implicit codebooks add over a search of the same width (target ≤ 0.9);
``rvq_beam_mse / rvq_greedy_mse`` is what the beam alone gives; ``irvq_mse / rvq_beam_mse`` is what training the
codebooks with the beam adds to searching with it. The latents are the checkpoint's encoder applied
to the demo corpus (not used in training). Times are best of ``--repeats``, seconds per second of audio.

    python benchmarks/qinco_bench.py [--checkpoint PATH] [--data data/demo] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from evalkit import audio as audio_lib
from evalkit.codecs import build_codec
from evalkit.codecs.qincodec.checkpoint import no_irvq_message, read_header

VARIANTS = {  # column → (family, extra spec parameters given B)
    "rvq_greedy": ("qincodec-rvq", lambda b: "&beam=1"),
    "rvq_beam": ("qincodec-rvq", lambda b: f"&beam={b}"),
    "qinco2_b1": ("qincodec", lambda b: "&beam=1"),
    "qinco2": ("qincodec", lambda b: ""),
    "irvq": ("qincodec-irvq", lambda b: f"&beam={b}"),
}


def best_time(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def held_out_latents(checkpoint: str, data: Path) -> tuple[torch.Tensor, object]:
    """Latent frames ``[D, frames]`` of every FLAC in ``data`` and a loaded probe codec."""
    probe = build_codec(f"qincodec?checkpoint={checkpoint}&n_steps=1", "cpu").load()
    encoder = probe.parts[0]
    latents = []
    with torch.no_grad():
        for path in sorted(data.glob("*.flac")):
            clip = audio_lib.load(path, channel_policy="mono")
            x = audio_lib.resample(clip.samples, clip.sample_rate, probe.sample_rate)
            x = x[:, : x.shape[1] // probe.hop_length * probe.hop_length]
            latents.append(encoder(torch.from_numpy(x)[None])[0])
    return torch.cat(latents, dim=-1), probe


def measure(checkpoint: str, data: Path, repeats: int) -> dict:
    latent, probe = held_out_latents(checkpoint, data)
    seconds = latent.shape[-1] / probe.frame_rate
    q = probe.config.quantizer
    skipped = {} if "irvq" in read_header(checkpoint)["parts"] else {"irvq": no_irvq_message(checkpoint)}
    rows = []
    for m in sorted({max(1, q.steps // 4), q.steps // 2, q.steps}):
        row: dict = {"M": m}
        for column, (family, extra) in VARIANTS.items():
            if column in skipped:
                row.update({f"{column}_{k}": float("nan") for k in ("mse", "encode_s_per_s", "decode_s_per_s")})
                continue
            codec = build_codec(f"{family}?checkpoint={checkpoint}&n_steps={m}{extra(q.beam)}", "cpu").load()
            with torch.no_grad():
                enc_s, codes = best_time(lambda c=codec: c.quantize(latent[None]), repeats)
                dec_s, rec = best_time(lambda c=codec, k=codes: c.dequantize(k), repeats)
            row["kbps"] = codec.bitrate_bps / 1000
            row[f"{column}_mse"] = float((rec[0] - latent).pow(2).mean())
            row[f"{column}_encode_s_per_s"] = enc_s / seconds
            row[f"{column}_decode_s_per_s"] = dec_s / seconds
        row["ratio_qinco2_to_rvq_beam"] = row["qinco2_mse"] / row["rvq_beam_mse"]
        row["ratio_qinco2_to_rvq_greedy"] = row["qinco2_mse"] / row["rvq_greedy_mse"]
        row["ratio_rvq_beam_to_greedy"] = row["rvq_beam_mse"] / row["rvq_greedy_mse"]
        row["ratio_qinco2_b1_to_rvq_greedy"] = row["qinco2_b1_mse"] / row["rvq_greedy_mse"]
        row["ratio_irvq_to_rvq_beam"] = row["irvq_mse"] / row["rvq_beam_mse"]
        rows.append(row)
    return {"checkpoint_sha256": probe.sha256, "data": str(data), "frames": int(latent.shape[-1]),
            "seconds": seconds, "latent_dim": int(latent.shape[0]), "candidates": q.candidates, "beam": q.beam,
            "mse_unit": "latent units squared, mean over frames and dimensions", "repeats": repeats,
            "not_measured": skipped, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="shipped")
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    result = measure(args.checkpoint, args.data, args.repeats)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['frames']} held-out latent frames ({result['seconds']:.1f} s of audio, D={result['latent_dim']}) "
          f"from {args.data}; checkpoint sha256 {result['checkpoint_sha256'][:12]}; QINCo2 A={result['candidates']}, "
          f"B={result['beam']}")
    print(f"{'M':>3} {'kbps':>6} {'rvq greedy':>11} {'rvq beam':>9} {'qinco2 B=1':>11} {'qinco2':>9} "
          f"{'irvq':>9} {'q2/beam':>8} {'q2/greedy':>9} {'beam/greedy':>11} {'irvq/beam':>9} {'enc q2/beam':>11}")
    for r in result["rows"]:
        print(f"{r['M']:>3} {r['kbps']:>6.2f} {r['rvq_greedy_mse']:>11.5f} {r['rvq_beam_mse']:>9.5f} "
              f"{r['qinco2_b1_mse']:>11.5f} {r['qinco2_mse']:>9.5f} {r['irvq_mse']:>9.5f} "
              f"{r['ratio_qinco2_to_rvq_beam']:>8.3f} {r['ratio_qinco2_to_rvq_greedy']:>9.3f} "
              f"{r['ratio_rvq_beam_to_greedy']:>11.3f} {r['ratio_irvq_to_rvq_beam']:>9.3f} "
              f"{r['qinco2_encode_s_per_s'] / r['rvq_beam_encode_s_per_s']:>11.1f}")
    for column, reason in result["not_measured"].items():
        print(f"{column}: not measured (NaN): {reason}")
    print("MSE in latent units²; target q2/beam (QINCo2 / search-matched RVQ) <= 0.9; times best of "
          f"{args.repeats}")


if __name__ == "__main__":
    main()
