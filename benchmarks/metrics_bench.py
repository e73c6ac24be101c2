"""Time each evalkit metric against the implementation it mirrors, on the same inputs, in one run.

Part 1: 20 pairs x 10 s at 44.1 kHz (demo items looped to 10 s, mono; degraded = 7 kHz low-pass + noise).
  evalkit time = what the metric records (resampling, channel policy, alignment trim, compute); the
  pair's delay estimate, shared by every metric of the pair, is printed on its own line.
  reference    = audiotools MelSpectrogramLoss / MultiScaleSTFTLoss (DAC config), torchmetrics SI-SDR,
                 soxr + pesq.pesq, pystoi.stoi at 44.1 kHz (its own resampling), soxr + visqol-python.
Part 2: one reference against 8 decoded variants, mel distance: evalkit (reference analysed once) vs
  audiotools called per pair.
Part 3: the speech metrics on the demo speech items (looped to 10 s; degraded = 3.5 kHz low-pass + noise), each
  next to its library called directly on the same pair (soxr to 16 kHz, then speechmos.dnsmos.run; Resemblyzer
  preprocess_wav + embed_utterance of both signals + cosine; PocketSphinx on both signals + jiwer). evalkit's
  four DNSMOS scores share one model pass and WER/CER/dWER one transcript per signal (the first metric of a
  family pays), so the family totals are printed too. Then one reference against 4 variants: the reference's
  embedding and transcript are made once (evalkit) or per pair (direct).

Usage: .venv/bin/python benchmarks/metrics_bench.py [--pairs 20] [--seconds 10] [--speech-pairs 8] [--only speech]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from evalkit import audio
from evalkit.codecs.anchors import lowpass
from evalkit.metrics import Reference, get_metric, get_metrics, score_pair
from evalkit.metrics.prepare import Degraded, pair_delay
from evalkit.metrics.speech import model_threads

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
        "pesq_nb": ("soxr + pesq.pesq", pesq_ref("nb", 16000)),
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
        pair_delay(Reference(r, RATE), Degraded(d, RATE))
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


SPEECH = ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "speaker_similarity", "wer", "cer", "dwer"]


def speech_pairs(n: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray, str]]:
    import csv

    with open(DEMO / "MANIFEST.csv", newline="") as fh:
        texts = {r["file"]: r.get("text", "") for r in csv.DictReader(fh) if r["category"] == "speech"}
    rng = np.random.default_rng(1)
    files = sorted(texts)
    pairs = []
    for i in range(n):
        x = audio.load(DEMO / files[i % len(files)], channel_policy="mono").samples
        x = np.tile(x, (1, int(np.ceil(seconds * RATE / x.shape[1]))))[:, : int(seconds * RATE)]
        deg = lowpass(x, 3500, RATE) + 0.002 * (1 + i % 3) * rng.standard_normal(x.shape).astype(np.float32)
        pairs.append((x, deg.astype(np.float32), texts[files[i % len(files)]]))
    return pairs


def speech_references():
    """The libraries called directly on one (reference, degraded, text) at 44.1 kHz: soxr to 16 kHz first."""
    import jiwer
    from pocketsphinx import Decoder
    from speechmos import dnsmos

    from evalkit.metrics.asr import normalize_text
    from evalkit.metrics.speaker import _resemblyzer

    resemblyzer = _resemblyzer()
    encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
    decoder = Decoder(samprate=16000, loglevel="FATAL")

    def at16(x):
        return audio.resample(x, RATE, 16000)[0]

    def transcript(x):
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(np.clip(np.round(at16(x) * 32768), -32768, 32767).astype(np.int16).tobytes(),
                            full_utt=True)
        decoder.end_utt()
        return decoder.hyp().hypstr if decoder.hyp() else ""

    def similarity(r, d):
        a, b = (encoder.embed_utterance(resemblyzer.preprocess_wav(at16(x))) for x in (r, d))
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    def dnsmos_score(key):
        return lambda r, d, text: float(dnsmos.run(np.clip(at16(d), -1, 1), 16000)[key])

    return {
        "dnsmos_ovrl": dnsmos_score("ovrl_mos"), "dnsmos_sig": dnsmos_score("sig_mos"),
        "dnsmos_bak": dnsmos_score("bak_mos"), "dnsmos_p808": dnsmos_score("p808_mos"),
        "speaker_similarity": lambda r, d, text: similarity(r, d),
        "wer": lambda r, d, text: jiwer.wer(normalize_text(text), normalize_text(transcript(d))),
        "cer": lambda r, d, text: jiwer.cer(normalize_text(text), normalize_text(transcript(d))),
        "dwer": lambda r, d, text: jiwer.wer(normalize_text(transcript(r)), normalize_text(transcript(d))),
    }


def part3(pairs, seconds: float) -> None:
    torch.set_num_threads(1)  # both sides: Resemblyzer's LSTM gains nothing from threads on a shared machine
    refs = speech_references()
    metrics = [get_metric(n) for n in SPEECH]
    r0, d0, t0 = pairs[0]
    score_pair(Reference(r0, RATE, text=t0), d0, RATE, metrics)  # warm-up: models load once per process
    for fn in refs.values():
        fn(r0, d0, t0)
    audio_seconds = len(pairs) * seconds
    ours = {n: [] for n in SPEECH}
    theirs = {n: [] for n in SPEECH}
    t_ours = dict.fromkeys(SPEECH, 0.0)
    t_ref = dict.fromkeys(SPEECH, 0.0)
    for r, d, text in pairs:
        for result in score_pair(Reference(r, RATE, text=text), d, RATE, metrics):
            ours[result.metric].append(result.value)
            t_ours[result.metric] += result.seconds
        for name, fn in refs.items():
            t1 = time.perf_counter()
            theirs[name].append(fn(r, d, text))
            t_ref[name] += time.perf_counter() - t1
    print(f"\nPart 3: speech metrics, {len(pairs)} pairs x {seconds:g} s of demo speech at {RATE} Hz "
          f"(s per audio-second; ratio = direct / evalkit; torch 1 thread on both sides, direct DNSMOS with "
          f"onnxruntime's default threads, evalkit's with {model_threads()})")
    print(f"{'metric':<19} {'evalkit':>9} {'direct':>9} {'ratio':>6} {'max |diff|':>11}  mean value")
    for name in SPEECH:
        diff = np.nanmax(np.abs(np.array(ours[name]) - np.array(theirs[name])))
        print(f"{name:<19} {t_ours[name] / audio_seconds:>9.4f} {t_ref[name] / audio_seconds:>9.4f} "
              f"{t_ref[name] / t_ours[name]:>6.2f} {diff:>11.2e}  {np.nanmean(ours[name]):.4f}")
    for family in (SPEECH[:4], SPEECH[5:]):
        ev, di = sum(t_ours[n] for n in family), sum(t_ref[n] for n in family)
        print(f"{'+'.join(n.split('_')[-1] for n in family):<19} {ev / audio_seconds:>9.4f} {di / audio_seconds:>9.4f} "
              f"{di / ev:>6.2f}  family total (one model pass per signal in evalkit)")
    names = ["speaker_similarity", "dwer"]
    variants = [lowpass(r0, c, RATE) for c in (2500, 3500, 5000, 7000)]
    t1 = time.perf_counter()
    for v in variants:
        refs["speaker_similarity"](r0, v, t0)
        refs["dwer"](r0, v, t0)
    direct = time.perf_counter() - t1
    reference = Reference(r0, RATE, text=t0)
    evalkit = sum(x.seconds for v in variants for x in score_pair(reference, v, RATE, get_metrics(names)))
    print(f"one reference x {len(variants)} variants, speaker_similarity + dwer: evalkit {evalkit:.2f} s, direct "
          f"per pair {direct:.2f} s, ratio {direct / evalkit:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--speech-pairs", type=int, default=8)
    parser.add_argument("--only", choices=["speech"], help="run only this part")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    if args.only is None:
        pairs = make_pairs(args.pairs, args.seconds)
        part1(pairs, args.seconds)
        part2(pairs)
    part3(speech_pairs(args.speech_pairs, args.seconds), args.seconds)


if __name__ == "__main__":
    main()
