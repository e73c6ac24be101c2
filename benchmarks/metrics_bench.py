"""Time each evalkit metric against the implementation it mirrors, on the same inputs, in one run.

Part 1: 20 pairs x 10 s at 44.1 kHz (demo items looped to 10 s, mono; degraded = 7 kHz low-pass + noise).
  evalkit time = what the metric records (resampling, channel policy, alignment trim, compute); the
  pair's delay estimate, shared by every metric of the pair, is printed on its own line.
  reference    = audiotools MelSpectrogramLoss / MultiScaleSTFTLoss (DAC config), torchmetrics SI-SDR,
                 soxr + pesq.pesq, pystoi.stoi at 44.1 kHz (its own resampling), soxr + visqol-python.
Part 2: one reference against 8 decoded variants, mel distance: evalkit (reference analysed once) vs
  audiotools called per pair.

Usage: .venv/bin/python benchmarks/metrics_bench.py [--pairs 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from evalkit import audio
from evalkit.codecs.anchors import lowpass
from evalkit.metrics import Reference, get_metric, score_pair
from evalkit.metrics.prepare import pair_delay

RATE = 44_100
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def make_pairs(n: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    files = sorted(DEMO.glob("*.flac"), key=lambda p: (not p.name.startswith("speech"), p.name))
    pairs = []
    for i in range(n):
        x = audio.load(files[i % len(files)], channel_policy="mono").samples
        x = np.tile(x, (1, int(np.ceil(seconds * RATE / x.shape[1]))))[:, : int(seconds * RATE)]
        cutoff = [3500, 7000, 10000][i % 3]
        deg = lowpass(x, cutoff, RATE) + 0.003 * (1 + i % 4) * rng.standard_normal(x.shape).astype(np.float32)
        pairs.append((x, deg.astype(np.float32)))
    return pairs


def references():
    from audiotools import AudioSignal
    from audiotools.metrics.spectral import MelSpectrogramLoss, MultiScaleSTFTLoss
    from pesq import PesqError, pesq
    from pystoi import stoi
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio
    from visqol import VisqolApi

    mel_loss = MelSpectrogramLoss(n_mels=[5, 10, 20, 40, 80, 160, 320], window_lengths=[32, 64, 128, 256, 512, 1024,
                                  2048], mel_fmin=[0.0] * 7, mel_fmax=[None] * 7, pow=1.0, clamp_eps=1e-5,
                                  mag_weight=0.0)
    stft_loss = MultiScaleSTFTLoss(window_lengths=[2048, 512])
    apis = {}

    def sig(x):
        return AudioSignal(torch.from_numpy(x)[None], RATE)

    def visqol(mode, rate):
        if mode not in apis:
            apis[mode] = VisqolApi()
            apis[mode].create(mode=mode)

        def run(r, d):
            r2, d2 = audio.resample(r, RATE, rate)[0], audio.resample(d, RATE, rate)[0]
            return apis[mode].measure_from_arrays(r2.astype(float), d2.astype(float), rate).moslqo
        return run

    def pesq_ref(mode, rate):
        def run(r, d):
            try:
                return pesq(rate, audio.resample(r, RATE, rate)[0].astype(float),
                            audio.resample(d, RATE, rate)[0].astype(float), mode)
            except PesqError:  # e.g. no utterances in music: evalkit reports NaN + reason too
                return float("nan")
        return run

    return {
        "si_sdr": ("torchmetrics", lambda r, d: scale_invariant_signal_distortion_ratio(
            torch.from_numpy(d), torch.from_numpy(r), zero_mean=True).mean().item()),
        "mel_distance": ("audiotools MelSpectrogramLoss", lambda r, d: mel_loss(sig(d), sig(r)).item()),
        "stft_distance": ("audiotools MultiScaleSTFTLoss", lambda r, d: stft_loss(sig(d), sig(r)).item()),
        "pesq_wb": ("soxr + pesq.pesq", pesq_ref("wb", 16000)),
        "pesq_nb": ("soxr + pesq.pesq", pesq_ref("nb", 8000)),
        "stoi": ("pystoi.stoi (own resampling)", lambda r, d: stoi(r[0], d[0], RATE, extended=False)),
        "estoi": ("pystoi.stoi (own resampling)", lambda r, d: stoi(r[0], d[0], RATE, extended=True)),
        "visqol_audio": ("soxr + visqol-python", visqol("audio", 48000)),
        "visqol_speech": ("soxr + visqol-python", visqol("speech", 16000)),
    }


def part1(pairs, seconds: float) -> None:
    refs = references()
    audio_seconds = len(pairs) * seconds
    for name, (_, fn) in refs.items():  # warm-up: JIT caches, filterbanks, models
        fn(*pairs[0])
        score_pair(Reference(*pairs[0][:1], RATE), pairs[0][1], RATE, [get_metric(name)])
    print(f"Part 1: {len(pairs)} pairs x {seconds:g} s at {RATE} Hz "
          f"(times in s per audio-second; ratio = reference / evalkit, > 1 means evalkit is faster)")
    print(f"{'metric':<15} {'evalkit':>9} {'reference':>9} {'ratio':>6} {'max |diff|':>11}  "
          f"{'mean value (ev / ref)':<24} reference")
    t0 = time.perf_counter()
    for r, d in pairs:
        pair_delay(Reference(r, RATE), d, RATE)
    print(f"{'(pair delay)':<15} {(time.perf_counter() - t0) / audio_seconds:>9.4f}  shared by all metrics of a pair")
    for name, (label, fn) in refs.items():
        ours, theirs, t_ours, t_ref = [], [], 0.0, 0.0
        for r, d in pairs:
            result = score_pair(Reference(r, RATE), d, RATE, [get_metric(name)])[0]
            t_ours += result.seconds
            ours.append(result.value)
            nan_reason = result.reason or locals().get("nan_reason")
            t1 = time.perf_counter()
            theirs.append(fn(r, d))
            t_ref += time.perf_counter() - t1
        diff = np.nanmax(np.abs(np.array(ours) - np.array(theirs)))
        failed = int(np.isnan(ours).sum())
        print(f"{name:<15} {t_ours / audio_seconds:>9.4f} {t_ref / audio_seconds:>9.4f} {t_ref / t_ours:>6.2f} "
              f"{diff:>11.2e}  {np.nanmean(ours):>10.4f} / {np.nanmean(theirs):<10.4f} {label}"
              + (f" ({failed} NaN: {nan_reason})" if failed else ""))


def part2(pairs) -> None:
    mel_ref = references()["mel_distance"][1]
    reference = pairs[0][0]
    variants = [lowpass(reference, c, RATE) for c in (2000, 3500, 5000, 7000, 9000, 11000, 14000, 18000)]
    metric = get_metric("mel_distance")
    score_pair(Reference(reference, RATE), variants[0], RATE, [metric])  # warm-up
    t0 = time.perf_counter()
    theirs = [mel_ref(reference, v) for v in variants]
    t_ref = time.perf_counter() - t0
    ref = Reference(reference, RATE)
    results = [score_pair(ref, v, RATE, [metric])[0] for v in variants]
    t_ours = sum(r.seconds for r in results)
    diff = max(abs(r.value - t) for r, t in zip(results, theirs, strict=True))
    print(f"\nPart 2: one reference x 8 variants, mel distance: evalkit {t_ours:.3f} s, audiotools per pair "
          f"{t_ref:.3f} s, ratio {t_ref / t_ours:.2f}x (target >= 1.5x), max |diff| {diff:.2e} (target <= 1e-5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    pairs = make_pairs(args.pairs, args.seconds)
    part1(pairs, args.seconds)
    part2(pairs)


if __name__ == "__main__":
    main()
