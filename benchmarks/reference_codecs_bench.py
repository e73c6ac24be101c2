"""Reference codecs (Opus, MP3, AAC through PyAV): real-time factors, and the cost of evalkit's wrapper.

For each codec on one demo item (44.1 kHz): the real-time factor of ``reconstruct`` (seconds per audio second:
resampling, in-memory encode, decode, alignment, length restore) and its ratio to the bare PyAV encode + decode
of the same signal at the codec's rate (``ReferenceCodec.encode`` / ``decode``), best of N.

Usage: .venv/bin/python benchmarks/reference_codecs_bench.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from evalkit import audio
from evalkit.codecs import build_codec

ITEM = Path(__file__).resolve().parents[1] / "data" / "demo" / "music_bach_bwv66_6.flac"
SPECS = ("opus?bitrate_kbps=6", "opus?bitrate_kbps=24", "mp3?bitrate_kbps=64", "aac?bitrate_kbps=64")


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
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    clip = audio.load(ITEM)
    seconds = clip.samples.shape[1] / clip.sample_rate
    print(f"{ITEM.name}: {seconds:.1f} s, {clip.samples.shape[0]} channels, {clip.sample_rate} Hz")
    print(f"{'codec':<24} {'RTF':>8} {'bare RTF':>9} {'wrapper/bare':>13} {'measured kbps':>14}")
    for spec in SPECS:
        codec = build_codec(spec).load()
        rate = codec.codec_rate_for(clip.sample_rate)
        x = audio.resample(clip.samples, clip.sample_rate, rate)
        full = best_of(lambda c=codec: c.reconstruct(clip.samples, clip.sample_rate), args.repeats)
        bare = best_of(lambda c=codec, x=x, r=rate: c.decode(c.encode(x, r)), args.repeats)
        kbps = codec.reconstruct(clip.samples, clip.sample_rate).report.measured_bitrate_bps / 1000
        print(f"{spec:<24} {full / seconds:>8.4f} {bare / seconds:>9.4f} {full / bare:>13.2f} {kbps:>14.2f}")


if __name__ == "__main__":
    main()
